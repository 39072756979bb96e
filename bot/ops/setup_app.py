"""`specbridge setup`: create the GitHub App from `app.yaml`, as Probot does.

GitHub's manifest flow: a local page (127.0.0.1) posts the manifest to
GitHub's new-app form; the person confirms there; GitHub redirects back to
the page with `?code=`, which is exchanged for the App's credentials. They go
to a `.env` file (mode 0600) that `serve` and `worker` read.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import yaml
from cryptography.fernet import Fernet
from flask import Flask, render_template_string, request
from werkzeug.serving import make_server

from bot.errors import CommandError
from bot.github.manifest import ConversionFailed, convert_manifest_code, is_api_root
from bot.settings import DEFAULT_GITHUB_API_URL, api_url_for, get_settings

# The keys of app.yaml that GitHub's manifest takes (the rest are comments for people).
MANIFEST_KEYS = (
    "name",
    "url",
    "description",
    "hook_attributes",
    "public",
    "default_permissions",
    "default_events",
)
CALLBACK = "/callback"
SHIPPED_MANIFEST = Path(__file__).with_name("app.yaml")


def manifest(app_yaml: dict[str, Any], redirect_url: str, webhook_url: str | None) -> dict:
    """The JSON GitHub's new-app form takes, from app.yaml."""
    data = {key: app_yaml[key] for key in MANIFEST_KEYS if key in app_yaml}
    data["hook_attributes"] = {**data.get("hook_attributes", {})}
    if webhook_url:
        data["hook_attributes"]["url"] = webhook_url
    data["redirect_url"] = redirect_url
    return data


def new_app_url(web_url: str, org: str | None, state: str) -> str:
    """GitHub's new-app form, for the person's account or an organization."""
    owner = f"/organizations/{org}" if org else ""
    return f"{web_url.rstrip('/')}{owner}/settings/apps/new?{urlencode({'state': state})}"


def env_lines(app: dict[str, Any], api_url: str) -> str:
    """The settings `serve` and `worker` read, from GitHub's answer to the conversion."""
    values = {
        "GITHUB_APP_ID": str(app["id"]),
        "GITHUB_APP_SLUG": app["slug"],
        "GITHUB_WEBHOOK_SECRET": app.get("webhook_secret") or "",
        "GITHUB_PRIVATE_KEY": app["pem"],
        # A person authorizes the App with these (`specbridge setup --agent-user`), and
        # their token is kept encrypted with the key.
        "GITHUB_CLIENT_ID": app.get("client_id") or "",
        "GITHUB_CLIENT_SECRET": app.get("client_secret") or "",
        "SPECBRIDGE_SECRET_KEY": Fernet.generate_key().decode(),
        # For compose.yaml's PostgreSQL and Redis: never a password fixed in a file.
        "POSTGRES_PASSWORD": secrets.token_urlsafe(32),
        "REDIS_PASSWORD": secrets.token_urlsafe(32),
    }
    if api_url != DEFAULT_GITHUB_API_URL:
        values["GITHUB_API_URL"] = api_url
    header = f"# The GitHub App {app['slug']}, written by `specbridge setup`. Keep it secret.\n"
    return header + "".join(f"{key}={_quoted(value)}\n" for key, value in values.items())


def write_env_file(path: Path, text: str, force: bool) -> None:
    """Readable by its owner only; an existing file stays unless force."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CommandError(f"{path} exists: pass --force to overwrite it") from None
    os.fchmod(descriptor, 0o600)  # an overwritten file keeps no wider mode it had
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def run_setup(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    env_file = Path(args.env_file)
    if env_file.exists() and not args.force:
        raise CommandError(f"{env_file} exists: pass --force to overwrite it")
    manifest_path = manifest_to_use(args.manifest)
    app_yaml = _read_manifest(manifest_path)
    say(f"the App's manifest: {manifest_path}")
    settings = get_settings()
    web_url = (args.github_url or settings.github_web_url).rstrip("/")
    api_url = choose_api_url(web_url, args.api_url, settings.github_api_url, args.github_url)
    flow = ManifestFlow(app_yaml, web_url, api_url, args, env_file)
    page = flow.start(args.port)
    hook = flow.manifest["hook_attributes"].get("url", "")
    say(f"webhooks will go to {hook}" + (" (pass --webhook-url)" if _placeholder(hook) else ""))
    say(f"open {page} to create the App on {web_url}; Ctrl-C to stop")
    if not args.no_browser:
        webbrowser.open(page)
    try:
        app = flow.wait()
    finally:
        flow.stop()
    if isinstance(app, Exception):  # the conversion failed: waiting longer would not help
        raise CommandError(str(app))
    say(f"created the GitHub App {app['slug']} (id {app['id']}); its credentials are in {env_file}")
    say(f"install it on your repositories: {app['html_url']}/installations/new")
    say("then start it: specbridge serve")
    return 0


def manifest_to_use(given: str | None) -> Path:
    """--manifest; else ./app.yaml, an operator's own copy (a checkout's links to the
    shipped one); else the manifest specbridge ships, for an install outside a checkout."""
    if given:
        return Path(given)
    here = Path("app.yaml")
    return here if here.exists() else SHIPPED_MANIFEST


def _placeholder(url: str) -> bool:
    """app.yaml's own webhook URL, on a domain reserved for examples: nothing listens."""
    host = urlparse(url).hostname or ""
    return host == "example.com" or host.endswith((".example.com", ".example"))


def choose_api_url(
    web_url: str, api_url: str | None, configured: str, github_url: str | None
) -> str:
    """Where the conversion goes: --api-url; else GITHUB_API_URL when set; else, for
    --github-url, an Enterprise Server's /api/v3 or, when that is no API and the address
    itself is (a proxy, a test double), the address itself."""
    if api_url:
        return api_url.rstrip("/")
    if not github_url or configured != DEFAULT_GITHUB_API_URL:
        return configured
    derived = api_url_for(web_url)
    if derived != DEFAULT_GITHUB_API_URL and not is_api_root(derived) and is_api_root(web_url):
        return web_url
    return derived


class ManifestFlow:
    """The local page and the redirect back, on 127.0.0.1."""

    def __init__(
        self,
        app_yaml: dict[str, Any],
        web_url: str,
        api_url: str,
        args: argparse.Namespace,
        env_file: Path,
    ) -> None:
        self.app_yaml, self.web_url, self.api_url = app_yaml, web_url, api_url
        self.args, self.env_file = args, env_file
        self.state = secrets.token_urlsafe(16)
        self.manifest: dict[str, Any] = {}
        self._done = threading.Event()
        self._result: dict[str, Any] | Exception | None = None
        self._server: Any = None

    def start(self, port: int) -> str:
        try:
            self._server = make_server("127.0.0.1", port, self._app(), threaded=True)
        except OSError as error:
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None
        base = f"http://127.0.0.1:{self._server.server_port}"
        self.manifest = manifest(self.app_yaml, base + CALLBACK, self.args.webhook_url)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return base + "/"

    def wait(self) -> dict[str, Any] | Exception:
        """The App GitHub made, or why the conversion failed."""
        while not self._done.wait(0.5):
            pass
        assert self._result is not None
        return self._result

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _app(self) -> Flask:
        app = Flask("specbridge-setup")
        app.add_url_rule("/", view_func=self._page)
        app.add_url_rule(CALLBACK, view_func=self._callback)
        return app

    def _page(self) -> str:
        hook = self.manifest.get("hook_attributes", {}).get("url", "")
        return render_template_string(
            SETUP_PAGE,
            name=self.manifest.get("name", "specbridge"),
            web_url=self.web_url,
            org=self.args.org,
            hook=hook,
            placeholder=_placeholder(hook),
            permissions=self.manifest.get("default_permissions", {}),
            events=self.manifest.get("default_events", []),
            target=new_app_url(self.web_url, self.args.org, self.state),
            sent=json.dumps(self.manifest),
            env_file=self.env_file.resolve(),
        )

    def _callback(self) -> tuple[str, int]:
        if request.args.get("state") != self.state:
            return "This redirect did not come from the page specbridge setup showed.", 400
        code = request.args.get("code")
        if not code:
            return "GitHub sent no code.", 400
        try:
            app = convert_manifest_code(self.api_url, code)
            write_env_file(self.env_file, env_lines(app, self.api_url), self.args.force)
        except (ConversionFailed, CommandError) as error:
            self._result = error  # setup ends and says it, instead of waiting on
            self._done.set()
            return (
                f"<!doctype html><h1>The App was not created</h1><p>{html.escape(str(error))}"
                "</p><p><code>specbridge setup</code> has stopped: run it again.</p>",
                502,
            )
        self._result = app
        self._done.set()
        install = html.escape(f"{app['html_url']}/installations/new")
        return (
            f"<!doctype html><h1>{html.escape(app['slug'])} is created</h1>"
            f"<p>Its credentials are in {html.escape(str(self.env_file.resolve()))}.</p>"
            f'<p>Next: <a href="{install}">install it on your repositories</a>, then run '
            "<code>specbridge serve</code>.</p>",
            200,
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CommandError(f"cannot read the manifest {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise CommandError(f"{path} is not YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data.get("name"):
        raise CommandError(f"{path} is not a GitHub App manifest (it needs at least `name`)")
    return data


def _quoted(value: str) -> str:
    """Double-quoted, with the escapes bot/settings.py's read_env_file undoes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# The page the person opens: what GitHub will be asked for, where its webhooks will go,
# and the button that sends the manifest to GitHub's form. Self-contained (nothing
# loaded from elsewhere); Jinja escapes every value.
SETUP_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Create the GitHub App {{ name }}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 44rem;
         padding: 0 1rem; color: #1f2328; }
  h1 { font-size: 1.5rem; margin-bottom: .3rem; }
  .where { color: #59636e; margin-top: 0; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }
  dt { font-weight: 600; } dd { margin: 0; }
  code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; font-size: 90%; }
  .hook { font-size: 1.05rem; }
  .warn { border: 1px solid #d4a72c; background: #fff8c5; border-radius: 6px;
          padding: .6rem .8rem; }
  ul { margin: 0; padding-left: 1.2rem; }
  button { font: inherit; font-weight: 600; color: #fff; background: #1f883d; border: 0;
           border-radius: 6px; padding: .6rem 1.2rem; cursor: pointer; margin-top: 1rem; }
  .note { color: #59636e; font-size: .9rem; }
</style>
</head>
<body>
<h1>Create the GitHub App <code>{{ name }}</code></h1>
<p class="where">on {{ web_url }}, {% if org %}for the organization
  <strong>{{ org }}</strong>{% else %}for your account{% endif %}</p>
<dl>
  <dt>Webhook URL</dt>
  <dd><code class="hook" id="webhook-url">{{ hook }}</code></dd>
  <dt>Permissions</dt>
  <dd><ul id="permissions">{% for what, level in permissions.items() %}
    <li><code>{{ what }}</code>: {{ level }}</li>{% endfor %}</ul></dd>
  <dt>Events</dt>
  <dd id="events">{% for event in events -%}
    <code>{{ event }}</code>{{ ", " if not loop.last }}
  {%- endfor %}</dd>
</dl>
{% if placeholder %}
<p class="warn" id="placeholder">{{ hook }} is the manifest's placeholder: GitHub could not
  deliver a webhook there. Stop <code>specbridge setup</code> and start it again with
  <code>--webhook-url https://your-host/webhook</code> (the address of
  <code>specbridge serve</code>'s <code>/webhook</code>), or change it on GitHub's form.</p>
{% endif %}
<form method="post" action="{{ target }}">
  <input type="hidden" name="manifest" value="{{ sent }}">
  <button type="submit">Create the GitHub App on GitHub</button>
</form>
<p class="note">GitHub shows its form with these settings; once you confirm, it sends you back
  here and <code>specbridge setup</code> writes the App's credentials to
  <code>{{ env_file }}</code>.</p>
</body>
</html>
"""
