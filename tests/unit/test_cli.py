from __future__ import annotations

import pytest

from bot import __version__
from bot.cli import main
from storage.migrate import current_revision


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"specbridge {__version__}"


def test_db_upgrade_then_current(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 0
        assert "empty" in capsys.readouterr().out
        assert main(["db", "upgrade"]) == 0
        revision = current_revision(empty_database_url)
        assert revision is not None and revision in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_malformed_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "nonsense")
    from bot.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 2
        assert capsys.readouterr().err.startswith("specbridge: REDIS_URL")
    finally:
        get_settings.cache_clear()
