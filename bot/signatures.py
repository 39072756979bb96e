"""GitHub's webhook signature: `X-Hub-Signature-256` is `sha256=` and the HMAC-SHA256
of the body, keyed with the App's webhook secret. Checked when a delivery arrives
(bot/web/webhook.py) and again when one kept in the spool is stored (bot/events/spool.py).
"""

from __future__ import annotations

import hashlib
import hmac


def signature_matches(secret: str, body: bytes, signature: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())
