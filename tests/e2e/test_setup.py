"""`specbridge setup` through GitHub's manifest flow against the double, then `serve` on
the `.env` it wrote."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
import requests

from bot.settings import read_env_file
from fakehub import FakeHub
from tests.e2e.harness import free_port, wait_until
from tests.support import REPO_ROOT, signature

BOT_PORT = free_port()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    """The double, sending its webhooks to where the test's `serve` will listen, signed at
    first with a secret of its own (the App's, once one is registered)."""
    double = FakeHub(
        f"http://127.0.0.1:{BOT_PORT}/webhook", "the double's own secret", tmp_path / "hub"
    )
    double.start()
    yield double
    double.stop()


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SPECBRIDGE_"))}
    for name in ("REDIS_URL", "DATABASE_URL", "PORT"):
        env.pop(name, None)
    return {**env, "PYTHONPATH": str(REPO_ROOT), **extra}


def _specbridge(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=_environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _page(url: str) -> str | None:
    try:
        return requests.get(url, timeout=2).text
    except requests.RequestException:
        return None


def test_setup_creates_the_app_and_serve_accepts_its_signed_deliveries(
    hub: FakeHub, tmp_path: Path
) -> None:
    port = free_port()
    setup = _specbridge(
        "setup",
        "--org",
        "acme",
        "--github-url",
        hub.url,
        "--port",
        str(port),
        "--webhook-url",
        "https://bot.acme.example/webhook",
        "--no-browser",
        # --github-url alone: its API is at its root, as it says when asked. No app.yaml
        # here: the manifest specbridge ships serves, as for an install from the wheel.
        cwd=tmp_path,
    )
    try:
        page = wait_until(lambda: _page(f"http://127.0.0.1:{port}/"), 30, "the setup page")
        assert '<code class="hook" id="webhook-url">https://bot.acme.example/webhook</code>' in page
        action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])
        sent = json.loads(unescape(re.search(r'name="manifest" value="([^"]+)"', page)[1]))
        assert action.startswith(f"{hub.url}/organizations/acme/settings/apps/new?state=")
        assert sent["redirect_url"] == f"http://127.0.0.1:{port}/callback"
        assert sent["hook_attributes"]["url"] == "https://bot.acme.example/webhook"
        assert "push" in sent["default_events"]

        # The person presses the button; GitHub redirects back with a code.
        done = requests.post(action, data={"manifest": json.dumps(sent)}, timeout=30)
        assert done.status_code == 200, done.text
        assert "installations/new" in done.text
        output, _ = setup.communicate(timeout=30)
    finally:
        if setup.poll() is None:
            setup.kill()
    assert setup.returncode == 0, output
    registered = hub.registered_apps[-1]
    assert registered["owner"]["login"] == "acme"
    assert registered["permissions"] == sent["default_permissions"]
    assert f"{registered['html_url']}/installations/new" in output

    env_file = tmp_path / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    written = read_env_file(env_file)
    assert written["GITHUB_APP_ID"] == str(registered["id"])
    assert written["GITHUB_PRIVATE_KEY"] == registered["pem"]
    assert written["GITHUB_WEBHOOK_SECRET"] == registered["webhook_secret"]
    assert written["GITHUB_APP_SLUG"] == registered["slug"]

    assert written["GITHUB_API_URL"] == hub.url

    serve = _specbridge("serve", cwd=tmp_path, PORT=str(BOT_PORT))
    try:
        bot = f"http://127.0.0.1:{BOT_PORT}"
        wait_until(lambda: _page(f"{bot}/healthz"), 60, "specbridge serve")
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "ping"}
        headers["X-GitHub-Delivery"] = "setup-1"
        signed = requests.post(
            f"{bot}/webhook",
            data=body,
            headers={
                **headers,
                "X-Hub-Signature-256": signature(body, written["GITHUB_WEBHOOK_SECRET"]),
            },
            timeout=10,
        )
        assert signed.status_code == 200, signed.text
        forged = requests.post(
            f"{bot}/webhook",
            data=body,
            headers={**headers, "X-Hub-Signature-256": signature(body, "guess")},
            timeout=10,
        )
        assert forged.status_code == 401
        # The double's own webhooks, signed with the App's secret as GitHub signs them.
        requests.post(
            f"{hub.url}/_admin/repos",
            json={"owner": "acme", "name": "rocket", "files": {"README.md": "hi\n"}},
            timeout=30,
        ).raise_for_status()
        requests.post(
            f"{hub.url}/_admin/repos/acme/rocket/commits",
            json={"files": {"README.md": "hello\n"}},
            timeout=30,
        ).raise_for_status()
        requests.post(f"{hub.url}/_admin/wait", timeout=60)
        sent = hub.webhooks.attempts
        assert sent and {a["status_code"] for a in sent} <= {200, 202}, sent[-1]["response"]
    finally:
        os.killpg(serve.pid, signal.SIGTERM)  # gunicorn's master and its worker
        serve.wait(timeout=30)


def test_setup_keeps_an_existing_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GITHUB_APP_ID=1\n")
    setup = _specbridge("setup", "--no-browser", cwd=tmp_path)
    output, _ = setup.communicate(timeout=60)
    assert setup.returncode == 2
    assert output.strip() == "specbridge: .env exists: pass --force to overwrite it"
    assert (tmp_path / ".env").read_text() == "GITHUB_APP_ID=1\n"


def test_a_failed_conversion_ends_setup_with_the_reason(hub: FakeHub, tmp_path: Path) -> None:
    port = free_port()
    setup = _specbridge(
        "setup",
        "--github-url",
        hub.url,
        "--port",
        str(port),
        "--manifest",
        str(REPO_ROOT / "app.yaml"),
        "--no-browser",
        cwd=tmp_path,
    )
    try:
        page = wait_until(lambda: _page(f"http://127.0.0.1:{port}/"), 30, "the setup page")
        action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])
        state = re.search(r"state=([^&]+)", action)[1]
        # GitHub sends the person back with a code it will not convert (used, or too old).
        back = requests.get(
            f"http://127.0.0.1:{port}/callback", params={"state": state, "code": "used"}, timeout=30
        )
        assert back.status_code == 502 and "run it again" in back.text
        output, _ = setup.communicate(timeout=30)  # it ends: nothing more will come
    finally:
        if setup.poll() is None:
            setup.kill()
    assert setup.returncode == 2
    assert (
        output.strip()
        .splitlines()[-1]
        .startswith("specbridge: GitHub did not convert the code (404 Not Found)")
    )
    assert not (tmp_path / ".env").exists()
