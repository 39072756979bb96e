from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.repo_config import CONFIG_PATH, RepoConfig, check_config_file, parse_repo_config


def test_absent_file_means_defaults_without_a_board() -> None:
    config, error = parse_repo_config(None)
    assert error is None
    assert config == RepoConfig()
    assert not config.has_board
    assert config.is_spec_path("specs/login.yaml")
    assert not config.is_spec_path("docs/login.yaml")
    assert not config.is_spec_path("specs/notes.md")


def test_full_file_is_read() -> None:
    text = b"specs_path: plans\nproject:\n  owner: acme\n  number: 4\nstatus:\n  done: Shipped\n"
    config, error = parse_repo_config(text)
    assert error is None
    assert config.specs_path == "plans/"
    assert (config.project_owner, config.project_number) == ("acme", 4)
    assert config.status == {"done": "Shipped"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"project: [1, 2", "not valid YAML"),
        (b"- a list", "must be a mapping"),
        (b"board: 3", "unknown setting(s): board"),
        (b"project: {owner: acme}", "project must be {owner: LOGIN, number: N}"),
        (b"status: {shipped: Done}", "unknown phase(s) shipped"),
        (b"specs_path: 7", "specs_path must be a directory path"),
    ],
)
def test_broken_file_falls_back_to_defaults_and_says_why(text: bytes, reason: str) -> None:
    config, error = parse_repo_config(text)
    assert config == RepoConfig()
    assert error is not None
    assert error.startswith(".github/specbridge.yml: ")
    assert reason in error


def test_a_column_for_failed_tickets_may_be_named_and_nothing_else_new() -> None:
    config, error = parse_repo_config(b"status: {failed: Blocked, done: Shipped}\n")
    assert error is None and config.status == {"failed": "Blocked", "done": "Shipped"}
    config, error = parse_repo_config(b"status: {broken: Oops}\n")
    assert error is not None and "unknown phase(s) broken" in error and "failed" in error


# -- `specbridge validate .github/specbridge.yml` ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"board: 3\nspecs_path: plans\n", [(1, "unknown-setting", "unknown setting 'board'")]),
        (b"project:\n  owner: acme\n", [(2, "missing-setting", "'project' needs 'number'")]),
        (
            b"project:\n  owner: acme\n  number: three\n",
            [(3, "invalid-setting", "'project.number' must be a whole number, not text")],
        ),
        (
            b"formats: [yaml, markdown]\n",
            [(1, "invalid-setting", "'formats' item 2 must be one of yaml, spec-kit, kiro")],
        ),
        (b"status:\n  shipped: Done\n", [(2, "unknown-setting", "unknown setting 'shipped'")]),
        (b"specs_path: [\n", [(2, "yaml-syntax", "YAML syntax error")]),
        (b"write_back: off\nspecs_path: plans\n", []),  # YAML 1.1's off is false: off
        (b"", []),  # no setting: the defaults
    ],
)
def test_the_settings_file_is_checked_against_its_schema_at_each_line(
    text: bytes, expected: list[tuple[int, str, str]]
) -> None:
    findings = check_config_file(text, ".github/specbridge.yml")
    assert [(f.line, f.code) for f in findings] == [(line, code) for line, code, _ in expected]
    for finding, (_, _, words) in zip(findings, expected, strict=True):
        assert words in finding.message and finding.path == ".github/specbridge.yml"


def test_what_the_schema_refuses_the_bot_refuses_too() -> None:
    """The schema and the parser the bot reads the file with agree on these."""
    for text in (b"board: 3\n", b"project: {owner: acme}\n", b"formats: []\n", b"- a\n"):
        assert check_config_file(text, CONFIG_PATH) and parse_repo_config(text)[1] is not None
    for text in (b"specs_path: plans\nformats: [kiro]\nwrite_back: commit\n", b""):
        assert not check_config_file(text, CONFIG_PATH) and parse_repo_config(text)[1] is None


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_validate_reads_the_settings_file_as_settings_in_every_format(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github/specbridge.yml").write_text("specs_path: plans\nbord: {}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--format", fmt, ".github/specbridge.yml"]) == 1
    out = capsys.readouterr().out
    assert "unknown-setting" in out
    # Not read as a spec ("needs 'title'", "needs 'phase'"); `phases` is a setting.
    assert "needs 'phase'" not in out and "needs 'title'" not in out
    (tmp_path / ".github/specbridge.yml").write_text("specs_path: plans\n")
    (tmp_path / ".github/workflows").mkdir()
    (tmp_path / ".github/workflows/ci.yml").write_text("on: push\njobs: {}\n")  # no spec
    assert main(["validate", "--format", fmt, "."]) == 0  # found in a folder too


def test_a_repository_may_cap_its_agent_runs() -> None:
    config, error = parse_repo_config(b"max_parallel: 2\n")
    assert (config.max_parallel, error) == (2, None)
    assert RepoConfig.from_dict(config.as_dict()).max_parallel == 2
    refused, error = parse_repo_config(b"max_parallel: 0\n")
    assert refused.max_parallel is None
    assert error is not None and "max_parallel must be a whole number" in error
