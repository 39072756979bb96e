"""`specbridge setup`'s pieces, the `.env` it writes and `serve`'s settings (the whole flow
against the double is tests/e2e/test_setup.py)."""

from __future__ import annotations

import argparse
import fnmatch
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from flask import Flask, jsonify, request

from bot.cli import CommandError, main
from bot.ops.setup_app import (
    SHIPPED_MANIFEST,
    ManifestFlow,
    env_lines,
    manifest,
    manifest_to_use,
    new_app_url,
    write_env_file,
)
from bot.settings import (
    SettingsError,
    api_url_for,
    get_settings,
    load_settings,
    read_env_file,
    web_url_for,
)
from bot.web.serve import _Gunicorn, behind_proxies
from fakehub.apps import new_private_key
from tests.support import REPO_ROOT

APP = {
    "id": 77,
    "slug": "specbridge-acme",
    "webhook_secret": 'se"cr\\et',
    "pem": "",
    "client_id": "Iv1.acme77",
    "client_secret": "c1ient-secret",
}


def test_manifest_is_app_yaml_with_the_redirect_and_webhook_url() -> None:
    app_yaml = yaml.safe_load((REPO_ROOT / "app.yaml").read_text())
    sent = manifest(app_yaml, "http://127.0.0.1:3000/callback", "https://bot.acme.dev/webhook")
    assert sent["redirect_url"] == "http://127.0.0.1:3000/callback"
    assert sent["hook_attributes"] == {"url": "https://bot.acme.dev/webhook", "active": True}
    assert sent["default_permissions"] == app_yaml["default_permissions"]
    assert sent["default_events"] == app_yaml["default_events"]
    assert sent["public"] is False
    assert app_yaml["hook_attributes"]["url"] != "https://bot.acme.dev/webhook"  # not changed


def test_new_app_form_for_an_account_an_organization_and_an_enterprise_server() -> None:
    assert (
        new_app_url("https://github.com", None, "s")
        == "https://github.com/settings/apps/new?state=s"
    )
    assert (
        new_app_url("https://ghe.acme.dev/", "acme", "s")
        == "https://ghe.acme.dev/organizations/acme/settings/apps/new?state=s"
    )
    assert api_url_for("https://github.com") == "https://api.github.com"
    assert api_url_for("https://ghe.acme.dev/") == "https://ghe.acme.dev/api/v3"
    assert web_url_for("https://ghe.acme.dev/api/v3") == "https://ghe.acme.dev"
    assert web_url_for("https://api.github.com") == "https://github.com"


def test_env_file_round_trips_a_private_key_and_is_private(tmp_path: Path) -> None:
    key = new_private_key()
    env_file = tmp_path / ".env"
    write_env_file(env_file, env_lines({**APP, "pem": key}, "https://ghe.acme.dev/api/v3"), False)
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = read_env_file(env_file)
    assert values["GITHUB_PRIVATE_KEY"] == key
    assert values["GITHUB_WEBHOOK_SECRET"] == 'se"cr\\et'
    assert values["GITHUB_API_URL"] == "https://ghe.acme.dev/api/v3"
    settings = load_settings(values)
    assert settings.github_app_id == 77 and settings.uses_app_auth
    # What `setup --agent-user` needs: the App's OAuth client and a key to keep a token with.
    assert settings.github_client_id == "Iv1.acme77"
    assert settings.github_client_secret == "c1ient-secret"
    assert settings.secret_key and settings.secret_key in values["SPECBRIDGE_SECRET_KEY"]
    # compose.yaml's PostgreSQL and Redis passwords: generated, a new pair each time.
    again = env_lines({**APP, "pem": key}, "https://ghe.acme.dev/api/v3")
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert len(values[name]) >= 32 and f"{name}={values[name]}" not in again

    with pytest.raises(CommandError, match="pass --force"):
        write_env_file(env_file, "X=1\n", force=False)
    env_file.chmod(0o644)
    write_env_file(env_file, "X=1\n", force=True)
    assert read_env_file(env_file) == {"X": "1"}
    assert env_file.stat().st_mode & 0o777 == 0o600


def test_env_file_is_read_from_the_working_directory_under_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "# written by hand\nexport GITHUB_APP_SLUG=from-file\nPORT='9001'\n"
        "GITHUB_WEBHOOK_SECRET=plain # a comment\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("GITHUB_APP_SLUG", "from-environment")
    settings = load_settings()
    assert settings.github_app_slug == "from-environment"
    assert settings.port == 9001
    assert settings.github_webhook_secret == "plain"


def test_a_malformed_env_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GITHUB_APP_ID=1\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2 is not a KEY=VALUE line"):
        read_env_file(tmp_path / ".env")
    (tmp_path / ".env").write_text('GITHUB_PRIVATE_KEY="-----BEGIN\n')
    with pytest.raises(SettingsError, match=r"\.env:1: the value's \" quote is not closed"):
        read_env_file(tmp_path / ".env")


def test_a_private_key_pasted_on_many_lines_is_read_as_compose_reads_it(tmp_path: Path) -> None:
    """The PEM as GitHub gives it, between double quotes: python-dotenv and compose take it."""
    key = new_private_key()
    (tmp_path / ".env").write_text(
        f'GITHUB_APP_ID=7\nGITHUB_PRIVATE_KEY="{key.strip()}"\n'
        "POSTGRES_PASSWORD=s3cret\n"
        'DATABASE_URL="postgresql://specbridge:${POSTGRES_PASSWORD}@db/specbridge"\n'
        "LITERAL='${POSTGRES_PASSWORD}'\n"
    )
    values = read_env_file(tmp_path / ".env")
    assert values["GITHUB_PRIVATE_KEY"] == key.strip()
    assert values["DATABASE_URL"] == "postgresql://specbridge:s3cret@db/specbridge"
    assert values["LITERAL"] == "${POSTGRES_PASSWORD}"
    assert load_settings(values).uses_app_auth


def test_the_env_file_with_the_private_key_is_never_committed() -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".env", "deploy/.env"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=REPO_ROOT, check=False
        )
        assert ignored.returncode == 0, f"{path} is not in .gitignore"


@pytest.mark.parametrize("value", ["0", "70000", "http"])
def test_port_must_be_a_tcp_port(value: str) -> None:
    with pytest.raises(SettingsError, match="PORT"):
        load_settings({"PORT": value})


def test_forwarded_headers_are_believed_only_behind_the_configured_proxies() -> None:
    def app() -> Flask:
        flask_app = Flask("t")
        flask_app.add_url_rule(
            "/", view_func=lambda: jsonify(ip=request.remote_addr, scheme=request.scheme)
        )
        return flask_app

    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    direct = behind_proxies(app(), 0).test_client().get("/", headers=forwarded).json
    assert direct == {"ip": "127.0.0.1", "scheme": "http"}
    proxied = behind_proxies(app(), 1).test_client().get("/", headers=forwarded).json
    assert proxied == {"ip": "203.0.113.9", "scheme": "https"}


def test_gunicorn_cmd_args_are_applied_and_the_embedded_queue_keeps_one_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers 4 --timeout 77 --bind 127.0.0.1:9")
    options = {"bind": "127.0.0.1:8000", "workers": 2, "threads": 8}
    with_redis = _Gunicorn(load_settings({"REDIS_URL": "redis://127.0.0.1:6379/9"}), options)
    assert (with_redis.cfg.workers, with_redis.cfg.timeout) == (4, 77)
    assert with_redis.cfg.bind == ["127.0.0.1:9"]
    embedded = _Gunicorn(load_settings({}), options)
    assert (embedded.cfg.workers, embedded.cfg.timeout) == (1, 77)


def test_demo_without_the_fakehub_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "graphql" else real(name, *a)
    )
    get_settings.cache_clear()
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.strip() == (
        "specbridge: specbridge demo needs the GitHub double: pip install 'specbridge[fakehub]'"
    )


def test_setup_needs_a_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    assert main(["setup", "--no-browser", "--manifest", "mine.yaml"]) == 2
    assert capsys.readouterr().err.strip() == (
        "specbridge: cannot read the manifest mine.yaml: No such file or directory"
    )
    assert not (tmp_path / ".env").exists()


def test_setup_outside_a_checkout_uses_the_manifest_specbridge_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install from the wheel has no app.yaml beside it: the one in the package serves,
    and it is in the package's data (pyproject.toml), so the wheel carries it."""
    monkeypatch.chdir(tmp_path)
    assert manifest_to_use(None) == SHIPPED_MANIFEST
    assert yaml.safe_load(SHIPPED_MANIFEST.read_text())["name"] == "specbridge"
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["bot"]
    shipped = SHIPPED_MANIFEST.relative_to(REPO_ROOT / "bot").as_posix()
    assert any(fnmatch.fnmatch(shipped, pattern) for pattern in package_data)
    # An operator's own copy in the working directory wins.
    (tmp_path / "app.yaml").write_text("name: ours\n")
    assert manifest_to_use(None) == Path("app.yaml")
    assert (REPO_ROOT / "app.yaml").resolve() == SHIPPED_MANIFEST  # the checkout's link


@pytest.mark.parametrize(
    ("webhook_url", "warned"),
    [(None, True), ("https://bot.acme.dev/webhook", False)],
)
def test_the_setup_page_shows_where_webhooks_will_go(
    tmp_path: Path, webhook_url: str | None, warned: bool
) -> None:
    args = argparse.Namespace(org="acme", webhook_url=webhook_url)
    flow = ManifestFlow(
        yaml.safe_load(SHIPPED_MANIFEST.read_text()),
        "https://github.com",
        "https://api.github.com",
        args,
        tmp_path / ".env",
    )
    flow.manifest = manifest(flow.app_yaml, "http://127.0.0.1:3000/callback", webhook_url)
    page = flow._app().test_client().get("/").get_data(as_text=True)

    hook = webhook_url or "https://specbridge.example.com/webhook"
    assert f'<code class="hook" id="webhook-url">{hook}</code>' in page
    assert ('id="placeholder"' in page) is warned
    assert "<code>organization_projects</code>: write" in page
    assert "<strong>acme</strong>" in page
    assert str(tmp_path / ".env") in page
    assert "<script" not in page and "https://" not in page.split("<style>")[1].split("</style>")[0]


def test_every_option_has_help() -> None:
    from bot.cli import _parser

    def walk(parser: argparse.ArgumentParser) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    missing += walk(sub)
            elif not action.help and action.dest != "help":
                missing.append(f"{parser.prog} {action.dest}")
        return missing

    assert walk(_parser()) == []


def test_the_api_setup_converts_at_is_found_or_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import setup_app

    roots: set[str] = set()
    monkeypatch.setattr(setup_app, "is_api_root", lambda url: url in roots)
    default = "https://api.github.com"
    choose = setup_app.choose_api_url

    assert choose("https://github.com", None, default, None) == default
    assert choose("https://github.com", None, default, "https://github.com") == default
    # An Enterprise Server: its API under /api/v3 (also the guess when nothing answers).
    roots = {"https://ghe.acme.dev/api/v3"}
    assert choose("https://ghe.acme.dev", None, default, "x") == "https://ghe.acme.dev/api/v3"
    roots = set()
    assert choose("https://ghe.acme.dev", None, default, "x") == "https://ghe.acme.dev/api/v3"
    # A proxy or a double answering the API at the address itself.
    roots = {"http://127.0.0.1:9000"}
    assert choose("http://127.0.0.1:9000", None, default, "x") == "http://127.0.0.1:9000"
    # Said outright: --api-url, then GITHUB_API_URL.
    assert choose("https://ghe.acme.dev", "https://proxy/api/", default, "x") == "https://proxy/api"
    assert choose("https://ghe.acme.dev", None, "https://set/api/v3", "x") == "https://set/api/v3"
