from __future__ import annotations

import pytest

from bot.repo_config import RepoConfig, parse_repo_config


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
