"""Registering a GitHub App from a manifest, as GitHub does it
(https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):

1. a page POSTs a form field `manifest` (JSON) to `/settings/apps/new` (a personal
   account) or `/organizations/{org}/settings/apps/new`, with `?state=` optional;
2. GitHub shows the new App for a person to confirm (here: confirmed at once) and
   redirects to the manifest's `redirect_url` with `?code=` (and the state);
3. `POST /app-manifests/{code}/conversions` (no authentication) answers once, within
   an hour, with the App: its id, slug, private key (`pem`), webhook secret, client id.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, redirect, request

from fakehub.http import error
from fakehub.state import new_id, node_id, now, user

# The new-app form is a web page, not the API: the REST description does not check it.
WEB_FORM = "/settings/apps/new"
CODE_LIFETIME = 3600
REQUIRED = ("url", "hook_attributes", "redirect_url")


def register_apps(app: Flask, hub: Any) -> None:
    pending: dict[str, tuple[float, dict[str, Any]]] = {}
    hub.registered_apps = []  # what the conversions answered, for tests to read

    def new_app(owner: str, owner_type: str) -> Any:
        try:
            manifest = json.loads(request.form.get("manifest") or "")
        except ValueError:
            return "Invalid GitHub App configuration: the manifest is not JSON", 422
        missing = [key for key in REQUIRED if not manifest.get(key)]
        if not isinstance(manifest.get("hook_attributes"), dict) or not manifest[
            "hook_attributes"
        ].get("url"):
            missing.append("hook_attributes.url")
        if missing:
            return f"Invalid GitHub App configuration: missing {', '.join(missing)}", 422
        code = secrets.token_hex(10)
        with hub.state.lock:
            pending[code] = (time.time(), {**manifest, "_owner": owner, "_type": owner_type})
        query = {"code": code}
        if request.args.get("state"):
            query["state"] = request.args["state"]
        return redirect(f"{manifest['redirect_url']}?{urlencode(query)}", 302)

    @app.route("/settings/apps/new", methods=["POST"])
    def new_personal_app() -> Any:
        return new_app("octocat", "User")

    @app.route("/organizations/<org>/settings/apps/new", methods=["POST"])
    def new_organization_app(org: str) -> Any:
        return new_app(org, "Organization")

    @app.post("/app-manifests/<code>/conversions")
    def conversion(code: str) -> Any:

        with hub.state.lock:
            created, manifest = pending.pop(code, (0.0, None))
        if manifest is None or time.time() - created > CODE_LIFETIME:
            return error(404, "Not Found")
        registered = _registered_app(hub.url, manifest)
        hub.registered_apps.append(registered)
        # GitHub signs an App's deliveries with the App's own secret: from now on the
        # double's are signed with the last registered App's (as `specbridge setup` wrote it).
        hub.webhooks.secret = registered["webhook_secret"]
        return jsonify(registered), 201


def _registered_app(base_url: str, manifest: dict[str, Any]) -> dict[str, Any]:
    app_id = new_id()
    name = manifest.get("name") or f"app-{app_id}"
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    owner = user(manifest["_owner"], manifest["_type"])
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("A", app_id),
        "owner": owner,
        "name": name,
        "description": manifest.get("description") or "",
        "external_url": manifest["url"],
        "html_url": f"{base_url}/apps/{slug}",
        "created_at": now(),
        "updated_at": now(),
        "permissions": dict(manifest.get("default_permissions") or {}),
        "events": list(manifest.get("default_events") or []),
        "client_id": f"Iv1.{secrets.token_hex(8)}",
        "client_secret": secrets.token_hex(20),
        "webhook_secret": secrets.token_hex(20),
        "pem": new_private_key(),
    }


def new_private_key() -> str:
    """An App's RSA key, as GitHub makes one (the double accepts any App token)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
