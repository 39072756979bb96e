"""A run's costs to the worker are bounded (issue 29, findings 7, 9 and 12): its output
is read in bounded memory, its disk and its connections through the egress proxy
are capped, and a bubblewrap check that was slow once is asked again."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.agents import sandbox
from bot.agents.egress import EgressProxy
from bot.agents.presets import summary_of
from bot.agents.sandbox import Limits, Policy
from bot.agents.workspace import remove_tree

AGENT = (65534, 65534) if os.geteuid() == 0 else None
needs_bubblewrap = pytest.mark.skipif(
    not sandbox.bubblewrap_works(AGENT), reason="bubblewrap cannot run here"
)


@pytest.fixture
def clone() -> Iterator[Path]:
    """A clone the agents' account owns, in a folder it can enter."""
    base = Path(tempfile.mkdtemp(prefix="specbridge-limits-"))
    base.chmod(0o755)
    clone = base / "tree"
    clone.mkdir()
    (clone / "README.md").write_text("hello\n")
    if AGENT is not None:
        for path in (clone, clone / "README.md"):
            os.lchown(path, *AGENT)
    yield clone
    remove_tree(base)


def run(command: str, clone: Path, limits: Limits, backend: str | None = None) -> sandbox.Outcome:
    return sandbox.run(
        command,
        workspace=clone,
        context=None,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        limits=limits,
        policy=Policy(backend=backend),
        account=AGENT,
    )


def test_a_gigabyte_on_one_line_is_read_in_bounded_memory(clone: Path) -> None:
    """The worker's peak memory, in a process of its own, while a command prints 512 MiB
    with no newline and then a preset's final JSON line.

    The peak is the process's own (VmHWM), not getrusage's ru_maxrss: that one keeps the
    high-water mark of the process it was forked from across exec, and a pytest worker
    that forks it may hold 200 MiB itself."""
    final = json.dumps({"type": "result", "result": "Done.", "num_turns": 3})
    command = f"head -c 512M /dev/zero | tr '\\0' a; echo; echo '{final}'"
    code = (
        "import json, sys; from pathlib import Path; from bot.agents import sandbox\n"
        f"outcome = sandbox.run({command!r}, workspace=Path({str(clone)!r}), context=None,"
        " env={'PATH': '/usr/bin:/bin'}, limits=sandbox.Limits(120),"
        f" policy=sandbox.Policy(backend='none'), account={AGENT!r})\n"
        "peak = next(int(line.split()[1]) * 1024 for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:'))\n"
        "print(json.dumps({'peak': peak, 'printed': outcome.printed, 'kept': len(outcome.output),"
        " 'last': outcome.output.splitlines()[-1], 'first': outcome.output.splitlines()[0]}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    found = json.loads(done.stdout)

    assert found["printed"] > 512 << 20
    assert found["peak"] < 200 << 20  # the interpreter and the tail; not the line
    assert found["kept"] <= sandbox.OUTPUT_TAIL_BYTES + 100
    assert found["first"].startswith("[") and "bytes of output before these" in found["first"]
    assert summary_of("claude-code", found["last"]) == {
        "text": "Done.",
        "turns": 3,
        "cost_usd": None,
    }


def test_the_tail_keeps_the_last_bytes_whatever_the_chunks() -> None:
    tail = sandbox.OutputTail(10)
    for chunk in (b"0123456789" * 3, b"ab", b"\nlast line\n"):
        tail.add(chunk)
    assert tail.seen == 43
    assert tail.text() == "[33 bytes of output before these]\nlast line\n"


@needs_bubblewrap
@pytest.mark.parametrize(
    "command",
    [
        "for n in $(seq 64); do head -c 1M /dev/zero > f$n; done; sleep 30",  # many files
        "head -c 64M /dev/zero > big; sleep 30",  # one file, past the kernel's RLIMIT_FSIZE
        "mkdir d; cd d; for n in $(seq 5000); do : > e$n; done; sleep 30",  # many empty ones
    ],
)
def test_a_run_that_fills_its_disk_ends_with_reason_disk(clone: Path, command: str) -> None:
    started = time.monotonic()
    outcome = run(command, clone, Limits(timeout=60, disk=16 << 20))
    assert (outcome.reason, outcome.hit_limit) == ("disk", True), outcome.output
    assert time.monotonic() - started < 30


@needs_bubblewrap
def test_a_run_within_its_disk_ends_as_it_would(clone: Path) -> None:
    outcome = run(
        "head -c 4M /dev/zero > some; echo done", clone, Limits(timeout=60, disk=16 << 20)
    )
    assert (outcome.reason, outcome.exit_code, outcome.output) == ("exit", 0, "done\n")


def test_the_disk_a_run_grows_by_counts_from_its_start(clone: Path) -> None:
    """The checkout itself may be bigger than the limit: only what the run adds counts."""
    (clone / "checked-out.bin").write_bytes(os.urandom(8 << 20))
    outcome = run("head -c 1M /dev/zero > some", clone, Limits(timeout=60, disk=4 << 20), "none")
    assert (outcome.reason, outcome.exit_code) == ("exit", 0)


def test_the_profile_sets_disk_and_connections() -> None:
    limits = Limits.from_profile(60, {"disk": "512M", "connections": 8})
    assert (limits.disk, limits.connections) == (512 << 20, 8)
    assert (Limits(60).disk, Limits(60).connections) == (2 << 30, 64)
    with pytest.raises(ValueError, match="connections"):
        Limits.from_profile(60, {"connections": 0})


def test_idle_connections_past_the_cap_are_refused_without_a_thread_each(tmp_path: Path) -> None:
    before = threading.active_count()
    clients: list[socket.socket] = []
    with EgressProxy(["127.0.0.1:9"], tmp_path / "egress.sock", max_connections=5) as proxy:
        try:
            for _ in range(300):
                client = socket.socket(socket.AF_UNIX)
                client.connect(str(proxy.socket_path))
                clients.append(client)
            time.sleep(0.5)
            threads = threading.active_count() - before
            clients[-1].settimeout(5)
            refused = clients[-1].recv(1024)
        finally:
            for client in clients:
                client.close()

    assert threads <= 5 + 2  # the five served, the accepting thread
    assert refused.startswith(b"HTTP/1.1 503 ")


def test_a_connection_that_never_sends_a_request_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.agents import egress

    monkeypatch.setattr(egress, "HEAD_TIMEOUT_SECONDS", 0.5)
    with EgressProxy(["127.0.0.1:9"], tmp_path / "egress.sock", max_connections=1) as proxy:
        idle = socket.socket(socket.AF_UNIX)
        idle.connect(str(proxy.socket_path))
        idle.settimeout(5)
        assert idle.recv(1024).startswith(b"HTTP/1.1 408 ")
        idle.close()
        time.sleep(0.2)
        # Its place is free again.
        again = socket.socket(socket.AF_UNIX)
        again.connect(str(proxy.socket_path))
        again.sendall(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n")
        again.settimeout(5)
        assert again.recv(1024).startswith(b"HTTP/1.1 403 ")
        again.close()


def test_a_bubblewrap_check_that_did_not_answer_in_time_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [subprocess.TimeoutExpired("bwrap", 10), subprocess.CompletedProcess([], 0, b"", b"")]
    monkeypatch.setattr(sandbox, "_BWRAP_WORKS", set())
    monkeypatch.setattr(shutil, "which", lambda name, **kw: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox.subprocess, "run", lambda *a, **kw: _next(answers))

    assert sandbox.bubblewrap_works((4242, 4242)) is True
    assert answers == []


def test_a_bubblewrap_check_that_failed_is_not_kept_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeouts = [subprocess.TimeoutExpired("bwrap", t) for t in sandbox.BWRAP_CHECK_TIMEOUTS]
    answers = [*timeouts, subprocess.CompletedProcess([], 0, b"", b"")]
    monkeypatch.setattr(sandbox, "_BWRAP_WORKS", set())
    monkeypatch.setattr(shutil, "which", lambda name, **kw: "/usr/bin/bwrap")
    monkeypatch.setattr(sandbox.subprocess, "run", lambda *a, **kw: _next(answers))

    assert sandbox.bubblewrap_works((4343, 4343)) is False
    assert sandbox.bubblewrap_works((4343, 4343)) is True
    calls_after_yes = len(answers)
    assert sandbox.bubblewrap_works((4343, 4343)) is True
    assert len(answers) == calls_after_yes  # a yes is kept


def _next(answers: list[object]) -> object:
    answer = answers.pop(0)
    if isinstance(answer, BaseException):
        raise answer
    return answer
