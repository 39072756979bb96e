"""The only way out of an agent's sandbox: an HTTP proxy that knows the allowed places.

The sandbox has no network and no DNS. This proxy runs outside it, in threads
of the worker for the run's duration, on a Unix socket bound into the sandbox
(bot/agents/forward.py turns that into 127.0.0.1:PORT for HTTPS_PROXY). It
lets through `CONNECT host:port` and plain-HTTP requests (`GET http://host/`)
only to the `host:port` pairs on its list, refuses everything else with 403,
logs each refusal, and resolves names itself.

One run holds at most `max_connections` connections at once (the profile's
`connections:`): past that a new one is answered 503 and closed at once, with
no thread of its own; a connection that sends no request within
HEAD_TIMEOUT_SECONDS is closed. Refusals are logged (the first LOGGED_REFUSALS
of a run, then a count), through the run's redaction: the agent chooses what a
refused request names.

A name on the list must not lead to this machine or its neighbours' metadata
service: loopback, link-local and unspecified addresses are reached only when
the list names them (127.0.0.1:8080, [::1]:8080, localhost:8080) — so a model
double on loopback can be allowed, and nothing else on loopback is.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from bot.agents.forward import pipe

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 65536
CONNECT_TIMEOUT_SECONDS = 10
HEAD_TIMEOUT_SECONDS = 30
LOGGED_REFUSALS = 20
MAX_LOGGED_CHARS = 200
LOCAL_NAMES = {"localhost"}


class Refused(Exception):
    """The request may not go out; the message is the HTTP status line's reason."""

    def __init__(self, status: int, reason: str, where: str = "?") -> None:
        super().__init__(reason)
        self.status = status
        self.where = where


def parse_destination(entry: str) -> tuple[str, int]:
    """'Host:443' → ('host', 443); '[::1]:80' → ('::1', 80). ValueError when not host:port."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.strip("[]").rstrip(".").lower()
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {entry!r}")
    return host, int(port)


class EgressProxy:
    """`with EgressProxy(["api.example.com:443"], path):` — serving on the Unix socket `path`."""

    def __init__(
        self,
        allowed: Iterable[str],
        socket_path: Path,
        max_connections: int = 64,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.allowed = {parse_destination(entry) for entry in allowed}
        self.socket_path = socket_path
        self.max_connections = max_connections
        self.redact = redact
        self.refused = 0
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def __enter__(self) -> EgressProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        # Whoever can reach the socket may use it: the folder holding it is the
        # agent's alone (the sandbox runs as another user than this process).
        os.chmod(self.socket_path, 0o666)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, name="egress-accept", daemon=True).start()

    def stop(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is not None:
            _close(self._server)  # wakes the accepting thread
            self._server = None
        with self._lock:
            self._stopped = True
            for sock in self._open:
                _close(sock)
            self._open.clear()
            self._clients.clear()
        self.socket_path.unlink(missing_ok=True)
        if self.refused > LOGGED_REFUSALS:
            log.warning("egress refused %s requests of this run in all", self.refused)

    def allows(self, host: str, port: int) -> bool:
        return (host.strip("[]").rstrip(".").lower(), port) in self.allowed

    def _accept(self) -> None:
        server = self._server
        while server is not None:
            try:
                client, _ = server.accept()
            except OSError:
                return  # stopped
            with self._lock:
                full = len(self._clients) >= self.max_connections
            if full:
                self._note(Refused(503, "Too Many Connections", f"{self.max_connections} open"))
                _answer(client, 503, "Too Many Connections")
                continue
            try:
                self._track(client, as_client=True)
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = self._open_upstream(client)
        except Refused as refused:
            self._note(refused)
            _answer(client, refused.status, str(refused))
            self._forget(client)
            return
        except OSError:
            self._forget(client)
            return
        pipe(client, upstream)
        self._forget(client, upstream)

    def _open_upstream(self, client: socket.socket) -> socket.socket:
        """Read the request, check it, connect, and pass on what the client sent."""
        head, rest = _read_head(client)
        tunnel, host, port, head = _request(head)
        if not self.allows(host, port):
            raise Refused(403, "Forbidden", f"{host}:{port}")
        upstream = self._track(_connect(host, port))
        try:
            if tunnel:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                upstream.sendall(head)
            upstream.sendall(rest)
        except OSError:
            self._forget(upstream)
            raise
        return upstream

    def _note(self, refused: Refused) -> None:
        with self._lock:
            self.refused += 1
            count = self.refused
        if count <= LOGGED_REFUSALS:
            where = self.redact(refused.where)[:MAX_LOGGED_CHARS]
            log.warning("egress refused: %s (%s %s)", where, refused.status, refused)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)
            self._clients.difference_update(socks)
        for sock in socks:
            sock.close()

    def _track(self, sock: socket.socket, as_client: bool = False) -> socket.socket:
        with self._lock:
            if self._stopped:  # a connection made while stopping: cut it too
                _close(sock)
                raise OSError("the egress proxy stopped")
            self._open.add(sock)
            if as_client:
                self._clients.add(sock)
        return sock


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    """The request's head (through the blank line) and any bytes read past it."""
    data = b""
    client.settimeout(HEAD_TIMEOUT_SECONDS)
    try:
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk or len(data) > MAX_HEAD_BYTES:
                raise Refused(400, "Bad Request")
            data += chunk
    except TimeoutError:
        raise Refused(408, "Request Timeout") from None
    client.settimeout(None)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _request(head: bytes) -> tuple[bool, str, int, bytes]:
    """(is CONNECT, host, port, the head to send upstream) of a proxy request."""
    first, _, headers = head.partition(b"\r\n")
    try:
        method, target, version = first.decode("ascii").split(" ")
        if method == "CONNECT":
            host, port = parse_destination(target)
            return True, host, port, b""
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(target)
        host, port = url.hostname, url.port or 80
    except ValueError:
        raise Refused(400, "Bad Request") from None
    # The origin server wants its path, not the absolute URL; Proxy-* headers are ours.
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    kept = [h for h in headers.split(b"\r\n") if not h.lower().startswith(b"proxy-")]
    return False, host, port, f"{method} {path} {version}\r\n".encode() + b"\r\n".join(kept)


def _connect(host: str, port: int) -> socket.socket:
    """Connect to an allowed destination, by addresses this process resolved itself."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Refused(502, "Bad Gateway", f"{host}:{port}") from None
    named_local = host in LOCAL_NAMES or _is_local(host)
    for *_, address in addresses:
        if _is_local(address[0]) and not named_local:
            raise Refused(403, "Forbidden", f"{host}:{port} (resolves to {address[0]})")
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(CONNECT_TIMEOUT_SECONDS)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            continue
        sock.settimeout(None)
        return sock
    raise Refused(502, "Bad Gateway", f"{host}:{port}")


def _is_local(host: str) -> bool:
    """An address of this machine or of its link (a cloud's metadata service)."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified


def _answer(client: socket.socket, status: int, reason: str) -> None:
    with contextlib.suppress(OSError):
        client.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
    _close(client)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
