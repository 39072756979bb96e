from __future__ import annotations

from bot.github.text import MAX_BODY
from bot.sync import render
from bot.sync.rows import findings_as_json
from specs.validate import validate_files


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


def test_the_findings_of_a_spec_of_1000_bad_tasks_fit_githubs_limit_on_a_comment() -> None:
    """GitHub refuses a commit comment over 65,536 characters: the comment on an invalid
    spec lists what fits and counts the rest."""
    lines = ["id: big", "title: Big", "phase: tasks", "tasks:"]
    lines += [f"  - {{id: TSK-{n}, title: Task {n}, priority: urgent}}" for n in range(1000)]
    [(spec, findings)] = validate_files({"specs/big.yaml": "\n".join(lines) + "\n"}).values()
    assert spec is None and len(findings) >= 1000

    comment = render.invalid_spec_comment("specs/big.yaml", findings_as_json(findings))

    assert len(comment) <= MAX_BODY
    listed = comment.count("\n- `specs/big.yaml:")
    assert 100 < listed < len(findings)
    assert f"\n- … and {len(findings) - listed} more\n" in comment
    assert comment.endswith("Run `specbridge validate` locally to check a fix before merging it.")
