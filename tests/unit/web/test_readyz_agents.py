"""/readyz says when agents cannot work: a profile that assigns Copilot without the
person's token GitHub requires, a profiles file that does not read, or none at all
where this process runs the agents. Said as a warning: deliveries are still taken,
so the service stays ready (a typo in the file must not take it out of rotation)."""

from __future__ import annotations

import os
from pathlib import Path

from bot.settings import load_settings
from bot.web.app import create_app
from tests.support import WEBHOOK_SECRET


def _ready(db: str, tmp_path: Path, profiles: str | None, **extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "agents.yaml"
    if profiles is not None:
        path.write_text(profiles)
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_TOKEN": "t",
            "SPECBRIDGE_AGENTS": str(path) if profiles is not None else "",
            **extra,
        }
    )
    return create_app(settings).test_client().get("/readyz")


def test_a_copilot_profile_without_the_persons_token_is_a_warning(db: str, tmp_path: Path) -> None:
    ready = _ready(db, tmp_path, "copilot:\n  github: {assign: copilot}\n")
    assert (ready.status_code, ready.json["status"]) == (200, "ok")
    warning = ready.json["warnings"]["agent_user_token"]
    assert "`copilot`" in warning and "SPECBRIDGE_AGENT_USER_TOKEN" in warning


def test_with_the_token_or_without_copilot_nothing_is_said(db: str, tmp_path: Path) -> None:
    copilot = "copilot:\n  github: {assign: copilot}\n"
    with_token = _ready(db, tmp_path, copilot, SPECBRIDGE_AGENT_USER_TOKEN="ghp_person")
    assert "warnings" not in with_token.json
    assert "ghp_person" not in with_token.get_data(as_text=True)
    assert "warnings" not in _ready(db, tmp_path, "fixer:\n  github: {label: fix-me}\n").json


def test_a_profiles_file_that_does_not_read_is_a_warning(db: str, tmp_path: Path) -> None:
    ready = _ready(db, tmp_path, "copilot:\n  github: {assign: someone}\n")
    assert (ready.status_code, ready.json["status"]) == (200, "ok")
    assert "only copilot, claude or codex can be assigned" in ready.json["warnings"]["agents"]
    assert "agents" not in ready.json["checks"]


def test_no_profiles_file_where_this_process_runs_the_agents_is_a_warning(
    db: str, tmp_path: Path
) -> None:
    """Without Redis, serve runs the agents: with no profiles file, tasks get issues and
    nothing else, which /readyz says. With Redis the workers run them, with a file of theirs
    (compose gives the web process none), so the web process cannot tell."""
    embedded = _ready(db, tmp_path, None, REDIS_URL="")
    assert embedded.status_code == 200
    assert "SPECBRIDGE_AGENTS is not set" in embedded.json["warnings"]["agents"]
    with_redis = _ready(
        db, tmp_path, None, REDIS_URL=os.environ.get("REDIS_URL") or "redis://127.0.0.1:1/0"
    )
    assert "agents" not in with_redis.json.get("warnings", {})


def test_a_preset_that_answers_people_only_without_the_token_is_a_warning(
    db: str, tmp_path: Path
) -> None:
    warning = _ready(db, tmp_path, "kiro:\n  hosted: kiro\n").json["warnings"]["agent_user_token"]
    assert "`kiro`" in warning and "SPECBRIDGE_AGENT_USER_TOKEN" in warning
    # OpenHands' resolver takes the App's label: nothing to say.
    assert "warnings" not in _ready(db, tmp_path, "oh:\n  hosted: openhands\n").json
