"""The double records every webhook attempt as GitHub's App webhook deliveries,
serves them over REST to an App JWT, and never retries on its own."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from fakehub import FakeHub
from fakehub.openapi import github_rest
from tests.support import WEBHOOK_SECRET

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def app_jwt(expires_in: int = 540) -> str:
    issued = int(time.time()) - 60
    claims = {"iat": issued, "exp": issued + 60 + expires_in, "iss": "4242"}
    return jwt.encode(claims, KEY, algorithm="RS256")


def as_app(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or app_jwt()}"}


class Bot:
    """A webhook endpoint answering `status` after `delay` seconds."""

    def __init__(self) -> None:
        self.status, self.delay = 202, 0.0
        self.received: list[dict[str, Any]] = []
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bot.received.append({"headers": dict(self.headers), "body": body})
                time.sleep(bot.delay)
                self.send_response(bot.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"stored")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"


@pytest.fixture(scope="module")
def bot() -> Iterator[Bot]:
    bot = Bot()
    yield bot
    bot.server.shutdown()


@pytest.fixture
def hub(bot: Bot, tmp_path: Any) -> Iterator[FakeHub]:
    bot.status, bot.delay = 202, 0.0
    bot.received.clear()
    hub = FakeHub(bot.url, WEBHOOK_SECRET, tmp_path / "hub")
    hub.start()
    requests.post(
        f"{hub.url}/_admin/repos", json={"owner": "acme", "name": "rocket"}, timeout=30
    ).raise_for_status()
    yield hub
    hub.stop()


def commit(hub: FakeHub, name: str = "a") -> str:
    """A push (and its check suite): returns the push's guid once both are sent."""
    answer = requests.post(
        f"{hub.url}/_admin/repos/acme/rocket/commits", json={"files": {name: name}}, timeout=30
    ).json()
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    return answer["delivery_id"]


def deliveries(hub: FakeHub, **query: Any) -> requests.Response:
    return requests.get(
        f"{hub.url}/app/hook/deliveries", params=query, headers=as_app(), timeout=30
    )


def schema(name: str) -> dict[str, Any]:
    described = {"$ref": f"#/components/schemas/{name}"}
    return github_rest().json_schema(json.dumps(described))


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_each_attempt_is_listed_newest_first_with_githubs_fields(hub: FakeHub) -> None:
    guid = commit(hub)

    answer = deliveries(hub)

    assert answer.status_code == 200
    listed = answer.json()
    assert [(d["event"], d["action"]) for d in listed] == [
        ("check_suite", "requested"),
        ("push", None),
    ]
    push = listed[1]
    assert push["guid"] == guid
    assert push["id"] < listed[0]["id"]
    assert (push["status"], push["status_code"], push["redelivery"]) == ("OK", 202, False)
    repository = hub.state.repo("acme", "rocket")
    assert push["installation_id"] == repository.installation_id
    assert push["repository_id"] == repository.id
    assert push["throttled_at"] is None
    for item in listed:
        jsonschema.validate(item, schema("hook-delivery-item"))
    assert requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"] == []


def test_one_delivery_carries_the_request_and_the_response(hub: FakeHub, bot: Bot) -> None:
    guid = commit(hub)
    [push] = [d for d in deliveries(hub).json() if d["event"] == "push"]

    answer = requests.get(
        f"{hub.url}/app/hook/deliveries/{push['id']}", headers=as_app(), timeout=30
    )

    assert answer.status_code == 200
    one = answer.json()
    jsonschema.validate(one, schema("hook-delivery"))
    assert one["url"] == bot.url
    assert one["request"]["headers"]["X-GitHub-Delivery"] == guid
    assert one["request"]["headers"]["X-GitHub-Event"] == "push"
    assert one["request"]["payload"] == json.loads(bot.received[0]["body"])
    assert one["response"] == {"headers": one["response"]["headers"], "payload": "stored"}
    assert one["response"]["headers"]["Content-Type"] == "text/plain"
    missing = requests.get(f"{hub.url}/app/hook/deliveries/1", headers=as_app(), timeout=30)
    assert missing.status_code == 404


def test_a_failed_delivery_stays_failed_until_it_is_redelivered(hub: FakeHub, bot: Bot) -> None:
    bot.status = 503
    guid = commit(hub)
    time.sleep(0.3)  # GitHub does not try again by itself: nothing more arrives

    [failed] = [d for d in deliveries(hub).json() if d["guid"] == guid]
    assert (failed["status"], failed["status_code"]) == ("Invalid HTTP Response: 503", 503)
    assert len([r for r in bot.received if r["headers"]["X-GitHub-Delivery"] == guid]) == 1
    assert [d["id"] for d in deliveries(hub, status="failure").json()] == [
        d["id"] for d in deliveries(hub).json()
    ]
    assert deliveries(hub, status="success").json() == []

    bot.status = 200
    answer = requests.post(
        f"{hub.url}/app/hook/deliveries/{failed['id']}/attempts", headers=as_app(), timeout=30
    )
    assert (answer.status_code, answer.json()) == (202, {})
    requests.post(f"{hub.url}/_admin/wait", timeout=60)

    again = [d for d in deliveries(hub).json() if d["guid"] == guid]
    assert [(d["redelivery"], d["status"]) for d in again] == [
        (True, "OK"),
        (False, "Invalid HTTP Response: 503"),
    ]
    assert again[0]["id"] > failed["id"]
    sent = [r for r in bot.received if r["headers"]["X-GitHub-Delivery"] == guid]
    assert len(sent) == 2 and sent[0]["body"] == sent[1]["body"]
    [listed] = [
        d
        for d in requests.get(f"{hub.url}/_admin/deliveries", timeout=30).json()
        if d["id"] == guid
    ]
    assert listed["status"] == 200
    assert listed["attempts"] == [failed["id"], again[0]["id"]]
    unknown = requests.post(
        f"{hub.url}/app/hook/deliveries/1/attempts", headers=as_app(), timeout=30
    )
    assert unknown.status_code == 404


def test_a_bot_that_is_not_listening_gets_failed_deliveries(hub: FakeHub, bot: Bot) -> None:
    down = f"http://127.0.0.1:{unused_port()}/webhook"
    requests.post(f"{hub.url}/_admin/webhook", json={"url": down}, timeout=30)
    guid = commit(hub)

    [failed] = [d for d in deliveries(hub).json() if d["guid"] == guid]
    assert (failed["status"], failed["status_code"]) == ("failed to connect to host", 0)
    assert bot.received == []

    requests.post(f"{hub.url}/_admin/webhook", json={"url": bot.url}, timeout=30)
    requests.post(f"{hub.url}/_admin/deliveries/{guid}/redeliver", timeout=30)
    requests.post(f"{hub.url}/_admin/wait", timeout=60)
    assert [r["headers"]["X-GitHub-Delivery"] for r in bot.received] == [guid]


def test_a_bot_that_hangs_times_out_and_the_double_goes_on(hub: FakeHub, bot: Bot) -> None:
    answer = requests.post(f"{hub.url}/_admin/webhook", json={"timeout": 0.3}, timeout=30)
    assert answer.json()["timeout"] == 0.3
    bot.delay = 2.0
    started = time.monotonic()
    requests.post(
        f"{hub.url}/_admin/repos/acme/rocket/commits", json={"files": {"a": "a"}}, timeout=30
    )
    assert requests.get(f"{hub.url}/repos/acme/rocket", timeout=5).status_code == 200
    requests.post(f"{hub.url}/_admin/wait", timeout=60)

    assert time.monotonic() - started < 1.9  # two deliveries, each cut off at 0.3 s
    listed = deliveries(hub).json()
    assert [(d["status"], d["status_code"]) for d in listed] == [("timed out", 0)] * 2


def test_pages_follow_the_link_header_with_a_cursor(hub: FakeHub) -> None:
    for name in "abc":
        commit(hub, name)  # six deliveries: a push and a check suite each
    everything = [d["id"] for d in deliveries(hub).json()]
    assert everything == sorted(everything, reverse=True) and len(everything) == 6

    seen, url, links = [], f"{hub.url}/app/hook/deliveries?per_page=4", []
    while url:
        answer = requests.get(url, headers=as_app(), timeout=30)
        assert answer.status_code == 200
        seen += [d["id"] for d in answer.json()]
        links.append(answer.headers.get("Link"))
        url = answer.links.get("next", {}).get("url")

    assert seen == everything
    assert links[0] == (
        f'<{hub.url}/app/hook/deliveries?per_page=4&cursor=v1_{everything[4]}>; rel="next"'
    )
    assert links[1:] == [None]
    assert len(deliveries(hub, per_page=500).json()) == 6  # 100 at most, so all six
    assert deliveries(hub, cursor="nonsense").status_code == 422
    assert requests.get(f"{hub.url}/_admin/state", timeout=30).json()["mismatches"] == []


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "Requires authentication"),
        ("ghs_installation_token", "A JSON web token could not be decoded"),
        ("not.a.jwt", "A JSON web token could not be decoded"),
        ("expired", "'Expiration time' claim ('exp') must be a numeric value"),
    ],
)
def test_only_an_app_jwt_may_read_or_redeliver(
    hub: FakeHub, token: str | None, message: str
) -> None:
    commit(hub)
    [first, *_] = deliveries(hub).json()
    if token == "expired":
        token = app_jwt(expires_in=-120)
    headers = {"Authorization": f"token {token}"} if token else {}
    for method, path in (
        ("GET", "/app/hook/deliveries"),
        ("GET", f"/app/hook/deliveries/{first['id']}"),
        ("POST", f"/app/hook/deliveries/{first['id']}/attempts"),
    ):
        answer = requests.request(method, f"{hub.url}{path}", headers=headers, timeout=30)
        assert answer.status_code == 401, path
        assert answer.json()["message"].startswith(message)
    assert len(deliveries(hub).json()) == 2  # nothing was redelivered
