"""/_admin/ routes for what people do beyond the ones in admin.py: a person's own
token (for the APIs GitHub opens only to user tokens, such as assigning Copilot)."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from fakehub.state import new_id


def register_people(app: Flask, hub: Any) -> None:
    state = hub.state

    def body() -> dict[str, Any]:
        return request.get_json(silent=True) or {}

    @app.post("/_admin/tokens")
    def user_token() -> Any:
        """A token of `user`, as a personal access token (`ghp_`) or, with
        `"kind": "user-to-server"`, a GitHub App user-to-server token (`ghu_`)."""
        data = body()
        login = data["user"]
        prefix = "ghu_" if data.get("kind") == "user-to-server" else "ghp_"
        token = f"{prefix}fake{new_id()}"
        with state.lock:
            state.user_tokens[token] = login
        return jsonify(token=token, user=login), 201
