from __future__ import annotations

from bot.sync import render


def test_markers_round_trip_for_tasks_and_tracking_issues() -> None:
    body = f"Some text\n\n{render.marker('passwordless-login', 'TSK-1')}"
    assert render.parse_marker(body) == ("passwordless-login", "TSK-1", None)
    assert render.parse_marker(render.marker("login", None)) == ("login", None, None)
    assert render.parse_marker(render.marker("login", None, 3)) == ("login", None, 3)
    assert render.parse_marker("a person's issue") is None


def test_content_hash_ignores_label_order_only() -> None:
    one = render.content_hash("t", "b", ["b", "a"])
    assert one == render.content_hash("t", "b", ["a", "b"])
    assert one != render.content_hash("t", "b ", ["a", "b"])


def test_mentions_in_spec_text_notify_nobody() -> None:
    text = "Ask @octocat and @acme/security; mail ops@acme.example; keep `@decorator`."
    assert render.shown(text) == (
        "Ask @&#8203;octocat and @&#8203;acme/security; mail ops@acme.example; keep `@decorator`."
    )
