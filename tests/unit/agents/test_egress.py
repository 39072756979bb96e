"""The egress proxy: only the listed host:port pairs, everything else 403 and logged."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.agents import egress
from bot.agents.egress import EgressProxy, parse_destination
from tests.unit.agents.servers import http_server


@pytest.fixture
def allowed_port() -> Iterator[int]:
    with http_server("allowed") as port:
        yield port


@pytest.fixture
def other_port() -> Iterator[int]:
    with http_server("other") as port:
        yield port


def ask(socket_path: Path, request: bytes, then: bytes = b"") -> bytes:
    """Send `request` to the proxy, and all it answers; after a 200 to a CONNECT, send
    `then` through the tunnel, and all that answers."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(str(socket_path))
        client.sendall(request)
        if then:
            assert client.recv(65536) == b"HTTP/1.1 200 Connection Established\r\n\r\n"
            client.sendall(then)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        return answer


def get(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


def test_connect_to_a_listed_destination_is_tunnelled(tmp_path: Path, allowed_port: int) -> None:
    with EgressProxy([f"127.0.0.1:{allowed_port}"], tmp_path / "egress.sock") as proxy:
        answer = ask(
            proxy.socket_path,
            f"CONNECT 127.0.0.1:{allowed_port} HTTP/1.1\r\n\r\n".encode(),
            then=get("/v1/messages", allowed_port),
        )
    assert answer.endswith(b"allowed /v1/messages")


def test_plain_http_to_a_listed_destination_goes_through(tmp_path: Path, allowed_port: int) -> None:
    with EgressProxy([f"127.0.0.1:{allowed_port}"], tmp_path / "egress.sock") as proxy:
        url = f"http://127.0.0.1:{allowed_port}/models?x=1"
        answer = ask(proxy.socket_path, get(url, allowed_port))
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"allowed /models?x=1")


@pytest.mark.parametrize("method", ["CONNECT", "GET"])
def test_anything_else_is_refused_and_logged(
    tmp_path: Path,
    allowed_port: int,
    other_port: int,
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = f"127.0.0.1:{other_port}" if method == "CONNECT" else f"http://127.0.0.1:{other_port}/"
    with (
        caplog.at_level(logging.WARNING, "bot.agents.egress"),
        EgressProxy([f"127.0.0.1:{allowed_port}"], tmp_path / "egress.sock") as proxy,
    ):
        answer = ask(proxy.socket_path, f"{method} {target} HTTP/1.1\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403")
    assert f"egress refused: 127.0.0.1:{other_port}" in caplog.text


def test_a_listed_name_that_leads_to_loopback_is_refused(
    tmp_path: Path, other_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name on the list (its DNS in someone else's hands) cannot reach this machine."""
    real = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        return real("127.0.0.1" if host == "api.example.test" else host, *args, **kwargs)

    monkeypatch.setattr(egress.socket, "getaddrinfo", resolve)
    with EgressProxy([f"api.example.test:{other_port}"], tmp_path / "egress.sock") as proxy:
        request = f"CONNECT api.example.test:{other_port} HTTP/1.1\r\n\r\n"
        answer = ask(proxy.socket_path, request.encode())
    assert answer.startswith(b"HTTP/1.1 403")


def test_stopping_cuts_open_tunnels(tmp_path: Path, allowed_port: int) -> None:
    proxy = EgressProxy([f"127.0.0.1:{allowed_port}"], tmp_path / "egress.sock")
    proxy.start()
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(str(proxy.socket_path))
        client.sendall(f"CONNECT 127.0.0.1:{allowed_port} HTTP/1.1\r\n\r\n".encode())
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        proxy.stop()
        assert client.recv(100) == b""
    assert not proxy.socket_path.exists()


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [("API.example.com:443", ("api.example.com", 443)), ("[::1]:80", ("::1", 80))],
)
def test_destinations_are_host_and_port(entry: str, parsed: tuple[str, int]) -> None:
    assert parse_destination(entry) == parsed


@pytest.mark.parametrize("entry", ["example.com", "example.com:http", ":443", "h:0", "h:70000"])
def test_a_destination_needs_both(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_destination(entry)
