"""The hostile agent: what can a command run by specbridge reach? Stdlib only.

It runs as the agent's command, in its clone, with the system python:

    python3 -I probe.py survey probe-config.json   # findings into probe-findings.json
    python3 -I probe.py fork-bomb                   # forks until refused, bounded
    python3 -I probe.py memory-hog [PROCESSES]      # touches memory until refused, bounded

The bomb and the hog are bounded (MAX_PROCESSES, MAX_BYTES, MAX_SECONDS) so a
broken sandbox cannot take the machine down with it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MAX_PROCESSES = 2000
MAX_BYTES = 3 << 30
MAX_SECONDS = 20
CHUNK = 16 << 20


def survey(config_file: str) -> None:
    config = json.loads(Path(config_file).read_text())
    findings = {
        "uid": os.getuid(),
        "processes_visible": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "secrets": find_secret(config["secret"]),
        "read": [p for p in config["files"] if can_read(p)],
        "credential_helpers": credential_helpers(),
        "reached_directly": [t for t in config["targets"] if connects(t)],
        "reached_by_proxy": [t for t in config["targets"] if tunnels(t)],
        "fetched": fetch(config["fetch"]),
        "pushed": pushes(config["remote"]),
    }
    Path("probe-findings.json").write_text(json.dumps(findings, indent=2))
    print(json.dumps(findings, indent=2))


def find_secret(secret: str) -> list[str]:
    """Where another process's environment (the bot's, another agent's) gives `secret` away."""
    places = {"/proc/1/environ", f"/proc/{os.getppid()}/environ"}
    places |= {f"/proc/{p}/environ" for p in os.listdir("/proc") if p.isdigit()}
    found = []
    for place in sorted(places):
        try:
            if secret.encode() in Path(place).read_bytes():
                found.append(place)
        except OSError:
            pass
    return found


def can_read(path: str) -> bool:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            Path(path).read_bytes()
    except OSError:
        return False
    return True


def credential_helpers() -> list[str]:
    """git's credential helpers, from every configuration git reads here."""
    try:
        result = subprocess.run(
            ["git", "config", "--get-regexp", r"^credential\..*helper$"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return []  # no git here
    return result.stdout.splitlines()


def connects(target: str) -> bool:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError:
        return False
    return True


def tunnels(target: str) -> bool:
    """Whether the proxy in HTTPS_PROXY (if any) opens a tunnel to `target`."""
    proxy = os.environ.get("HTTPS_PROXY", "").removeprefix("http://").rstrip("/")
    if not proxy:
        return False
    host, port = proxy.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as sock:
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            return sock.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def fetch(url: str) -> str:
    """GET `url` as an HTTP client does: through HTTP_PROXY when there is one."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode()
    except OSError as error:
        return f"failed: {error}"


def pushes(remote: str) -> bool:
    result = subprocess.run(
        ["git", "push", "--quiet", remote, "HEAD:refs/heads/probe"],
        capture_output=True,
        timeout=30,
    )
    return result.returncode == 0


def fork_bomb() -> None:
    """Fork sleeping children until the kernel refuses, and keep trying, like a bomb."""
    children, refused = [], 0
    deadline = time.monotonic() + MAX_SECONDS
    while time.monotonic() < deadline and len(children) < MAX_PROCESSES:
        try:
            pid = os.fork()
        except OSError:
            refused += 1
            time.sleep(0.01)
            continue
        if pid == 0:
            time.sleep(MAX_SECONDS)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    print(f"forked {len(children)}, refused {refused} times")


def memory_hog(processes: int) -> None:
    """Touch memory 16 MB at a time until refused (or MAX_BYTES), in `processes` processes."""
    for _ in range(processes - 1):
        if os.fork() == 0:
            break
    held = []
    deadline = time.monotonic() + MAX_SECONDS
    while len(held) * CHUNK < MAX_BYTES // processes and time.monotonic() < deadline:
        held.append(bytearray(b"x" * CHUNK))  # written: resident, not only reserved
        time.sleep(0.005)
    print(f"holding {len(held) * CHUNK >> 20} MB")
    time.sleep(5)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "survey":
        survey(args[0])
    elif mode == "fork-bomb":
        fork_bomb()
    elif mode == "memory-hog":
        memory_hog(int(args[0]) if args else 1)
