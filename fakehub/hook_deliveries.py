"""The App's webhook deliveries over REST, as GitHub serves them
(https://docs.github.com/rest/apps/webhooks), with an App JWT only:

- `GET /app/hook/deliveries?per_page=&cursor=&status=`: attempts newest first,
  `per_page` 30 by default and 100 at most, the next page named by a `Link`
  header `<...?per_page=N&cursor=v1_ID>; rel="next"`; `status=success` keeps
  status codes 200-399, `status=failure` 400-599 (as the description defines
  them: an attempt that never connected, status code 0, is in neither);
- `GET /app/hook/deliveries/{delivery_id}`: one attempt with its `url`,
  `request` (headers, payload) and `response` (headers, body as text);
- `POST /app/hook/deliveries/{delivery_id}/attempts`: 202 `{}`, then the event
  goes out again with the same `X-GitHub-Delivery`, recorded as a new attempt
  with `redelivery: true`.

An installation token, or anything else that is not a JWT, is a 401, as on
GitHub ("A JSON web token could not be decoded").
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, g, jsonify, request

from fakehub.actors import jwt_claims
from fakehub.http import error

SUMMARY_FIELDS = (
    "id",
    "guid",
    "delivered_at",
    "redelivery",
    "duration",
    "status",
    "status_code",
    "event",
    "action",
    "installation_id",
    "repository_id",
    "throttled_at",
)
DEFAULT_PAGE = 30
MAX_PAGE = 100
CURSOR = re.compile(r"^v1_(\d+)$")
NOT_A_JWT = "A JSON web token could not be decoded"
EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time "
    "at which the assertion expires"
)


def app_jwt_refusal(token: str | None) -> str | None:
    """Why GitHub would refuse `token` where an App JWT is required, or None."""
    if not token:
        return "Requires authentication"
    claims = jwt_claims(token)
    if claims is None:
        return NOT_A_JWT
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires <= time.time():
        return EXPIRED
    return None


def register_hook_deliveries(app: Flask, hub: Any) -> None:

    def refused() -> Any:
        reason = app_jwt_refusal(g.get("token"))
        return error(401, reason) if reason else None

    @app.get("/app/hook/deliveries")
    def list_hook_deliveries() -> Any:
        if (answer := refused()) is not None:
            return answer
        try:
            per_page = min(max(int(request.args.get("per_page", DEFAULT_PAGE)), 1), MAX_PAGE)
        except ValueError:
            return error(400, "Bad Request")
        attempts = hub.webhooks.hook_deliveries()
        wanted = request.args.get("status")
        if wanted == "success":
            attempts = [a for a in attempts if 200 <= a["status_code"] <= 399]
        elif wanted == "failure":
            attempts = [a for a in attempts if 400 <= a["status_code"] <= 599]
        cursor = request.args.get("cursor")
        if cursor:
            match = CURSOR.match(cursor)
            if match is None:
                return error(422, "Validation Failed", errors=[{"code": "invalid"}])
            attempts = [a for a in attempts if a["id"] <= int(match.group(1))]
        page, rest = attempts[:per_page], attempts[per_page:]
        response = jsonify([{k: a[k] for k in SUMMARY_FIELDS} for a in page])
        if rest:
            query = {
                **{k: v for k, v in request.args.items() if k not in ("cursor", "per_page")},
                "per_page": per_page,
                "cursor": f"v1_{rest[0]['id']}",
            }
            base = f"{request.host_url.rstrip('/')}{request.path}"
            response.headers["Link"] = f'<{base}?{urlencode(query)}>; rel="next"'
        return response

    @app.get("/app/hook/deliveries/<int:delivery_id>")
    def get_hook_delivery(delivery_id: int) -> Any:
        if (answer := refused()) is not None:
            return answer
        attempt = hub.webhooks.attempt(delivery_id)
        if attempt is None:
            return error(404, "Not Found")
        return jsonify(attempt)

    @app.post("/app/hook/deliveries/<int:delivery_id>/attempts")
    def redeliver_delivery(delivery_id: int) -> Any:
        if (answer := refused()) is not None:
            return answer
        if not hub.webhooks.redeliver_attempt(delivery_id):
            return error(404, "Not Found")
        return jsonify({}), 202
