"""/readyz says when an agent profile cannot work: one that assigns Copilot without
the person's token GitHub requires, or a profiles file that does not read. Said as
a warning: deliveries are still taken, so the service stays ready."""

from __future__ import annotations

from pathlib import Path

from bot.settings import load_settings
from bot.web.app import create_app
from tests.support import WEBHOOK_SECRET


def _ready(db: str, tmp_path: Path, profiles: str, **extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "agents.yaml"
    path.write_text(profiles)
    settings = load_settings(
        {
            "DATABASE_URL": db,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_TOKEN": "t",
            "SPECBRIDGE_AGENTS": str(path),
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


def test_a_profiles_file_that_does_not_read_fails_readiness(db: str, tmp_path: Path) -> None:
    ready = _ready(db, tmp_path, "copilot:\n  github: {assign: someone}\n")
    assert ready.status_code == 503
    assert "only copilot can be assigned" in ready.json["failed"]["agents"]
