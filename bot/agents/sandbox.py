"""A sandbox for each agent command: it sees its clone, its task, the system, and no more.

Backends (the profile's `sandbox:`):

- `bubblewrap` (the default when `bwrap` works here): new mount, PID, IPC, UTS,
  user and network namespaces. Read-only: /usr and the /bin, /lib links, a short
  list of /etc files (no git or npm configuration, nothing of the bot's), and the
  profile's `read_only` paths (an agent CLI's install). Read-write: the clone, and
  fresh size-limited tmpfs at /tmp, HOME (/home/agent) and /dev/shm. A /proc of
  its own shows only the sandbox's processes. The environment is exactly the one
  given. The network is loopback only; with a `network:` list, the egress proxy
  (bot/agents/egress.py) is the one way out, to the listed host:port pairs.
- `docker` / `podman`: `container_argv` builds the equivalent `run` command;
  running it is not wired yet (no engine to test it against).
- `none`: the command runs as it did before sandboxes (as the agents' account,
  under bot/agents/supervise.py). Only when the profile asks for it by name.

Limits, for bubblewrap and none: a watchdog reads /proc and ends the run when
the sandbox's processes together hold `memory` (resident) or `processes`
(threads), or when the clone has grown by `disk` since the run began; the
kernel refuses, per process, address space past `address_space` (RLIMIT_AS),
a file larger than `disk` (RLIMIT_FSIZE) and, per account, threads past
`processes` (RLIMIT_NPROC: counted per real uid across the host, so give agents
an account of their own), set through `prlimit`. The egress proxy holds at
most `connections` connections of the run at once.

The command's output is read in chunks into a bounded tail (OUTPUT_TAIL_BYTES):
a command that prints a gigabyte, on one line or many, costs the worker that
much reading and no more memory than the tail.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from bot.agents.egress import EgressProxy, parse_destination

log = logging.getLogger(__name__)

BACKENDS = ("bubblewrap", "docker", "podman", "none")
HOME = "/home/agent"
PROXY_PORT = 3128
PROXY_SOCKET = "/run/specbridge/egress.sock"
SYSTEM_PYTHON = "/usr/bin/python3"
FORWARDER = Path(__file__).with_name("forward.py")
SUPERVISOR = Path(__file__).with_name("supervise.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read in /etc, and nothing else: not /etc/specbridge, not
# gitconfig or npmrc (credential helpers, tokens), not shadow.
ETC_FILES = (
    "passwd",
    "group",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "mime.types",
    "os-release",
)
WATCH_SECONDS = 0.2
STOP_CHECK_SECONDS = 1
STOP_GRACE_SECONDS = 5
# The last bytes of a command's output kept: enough for the longest final message a
# preset parses back (bot/agents/presets.py), and a bounded cost per run.
OUTPUT_TAIL_BYTES = 1 << 20
READ_CHUNK = 1 << 16
# The clone's size is measured at most this often, and less often when measuring takes
# long (a big tree): the measure takes at most a tenth of the run's time.
DISK_CHECK_SECONDS = 1.0
# Each file or folder counts at least this much: a million empty files fill a disk too.
DISK_ENTRY_BYTES = 4096
# Whether bwrap starts, asked again when it does not answer in time (a loaded host).
BWRAP_CHECK_TIMEOUTS = (10, 30, 60)
PAGE = os.sysconf("SC_PAGE_SIZE")

Command = str | Sequence[str]


class SandboxError(RuntimeError):
    """The sandbox cannot run here, or the profile asks for something it cannot do."""


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory: int = 4 << 30  # resident bytes, all processes together (the watchdog)
    # Virtual bytes, per process (RLIMIT_AS), a backstop for a hog faster than
    # the watchdog. Not lower: Node reserves ~10 GiB per WebAssembly memory.
    address_space: int = 16 << 30
    processes: int = 512  # threads, in fact: the kernel counts both
    cpus: float | None = None  # containers only
    scratch: int = 512 << 20  # bytes of each of /tmp, HOME, /dev/shm (memory, too)
    disk: int = 2 << 30  # bytes the clone may grow by during the run (files and folders)
    connections: int = 64  # connections open at once through the egress proxy

    @classmethod
    def from_profile(cls, timeout: float, data: Mapping[str, object]) -> Limits:
        """The profile's `memory: 4G`, `address_space: 16G`, `processes: 512`, `cpus: 2`,
        `scratch: 512M`, `disk: 2G`, `connections: 64`."""
        defaults = cls(timeout)
        return cls(
            timeout=timeout,
            memory=parse_size(data.get("memory", defaults.memory)),
            address_space=parse_size(data.get("address_space", defaults.address_space)),
            processes=_positive_int("processes", data.get("processes", defaults.processes)),
            cpus=float(data["cpus"]) if data.get("cpus") is not None else None,  # type: ignore[arg-type]
            scratch=parse_size(data.get("scratch", defaults.scratch)),
            disk=parse_size(data.get("disk", defaults.disk)),
            connections=_positive_int("connections", data.get("connections", defaults.connections)),
        )


@dataclass(frozen=True)
class Policy:
    backend: str | None = None  # None: bubblewrap, if it works here
    network: tuple[str, ...] = ()  # host:port pairs; empty: no network at all
    read_only: tuple[str, ...] = ()  # more paths to show, read-only, at the same place
    image: str | None = None  # containers only

    @classmethod
    def from_profile(cls, data: Mapping[str, object]) -> Policy:
        """The profile's `sandbox:`, `network: none | [host:port, ...]`, `read_only:`, `image:`."""
        backend = data.get("sandbox")
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"sandbox must be one of {', '.join(BACKENDS)}")
        network = data.get("network") or ()
        if network == "none":
            network = ()
        if not isinstance(network, list | tuple):
            raise ValueError("network must be none or a list of host:port")
        for entry in network:
            parse_destination(str(entry))
        read_only = data.get("read_only") or ()
        if not isinstance(read_only, list | tuple) or not all(
            os.path.isabs(str(p)) for p in read_only
        ):
            raise ValueError("read_only must be a list of absolute paths")
        image = data.get("image")
        return cls(
            backend=str(backend) if backend else None,
            network=tuple(str(e) for e in network),
            read_only=tuple(str(p) for p in read_only),
            image=str(image) if image else None,
        )


@dataclass
class Outcome:
    exit_code: int | None
    output: str
    # "exit": it ended on its own (a process refused address space by RLIMIT_AS
    # fails its allocation and exits: "exit", its output says why). Or why it
    # was ended: "timeout"; "memory", "processes": its processes together held
    # as much as the limit; "disk": the clone grew by as much as the limit;
    # "stopped": should_stop said so.
    reason: str = "exit"
    printed: int = 0  # bytes of output in all, of which `output` is the tail

    @property
    def hit_limit(self) -> bool:
        return self.reason in ("timeout", "memory", "processes", "disk")


def run(
    command: Command,
    *,
    workspace: Path,
    context: Path | None,
    env: Mapping[str, str],
    limits: Limits,
    policy: Policy = Policy(),
    account: tuple[int, int] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    shown: Sequence[Path] = (),
    disk_baseline: int | None = None,
    redact: Callable[[str], str] = str,
) -> Outcome:
    """Run `command` in `workspace` under `policy` and `limits`; its output, status and why.

    `account`: the (uid, gid) the command runs as; required when this process is
    root (root in a user namespace is root to every file it can see).
    `shown`: more paths the command may read (the history its repository borrows).
    `disk_baseline`: the workspace's size the `disk` limit counts from (by default,
    its size now). `redact`: what the egress proxy's log lines go through.
    """
    backend = choose_backend(policy.backend, account)
    disk = _DiskWatch(workspace, limits.disk, disk_baseline)
    network = ", ".join(policy.network) or "none"
    log.info("sandbox %s, network %s", backend, network, extra={"sandbox": backend})
    if backend == "none":
        process = _launch(_unsandboxed(command, account), env, limits, None, cwd=workspace)
        return _watch(process, limits, should_stop, _uid(account), disk)
    if backend != "bubblewrap":
        raise SandboxError(f"the {backend} sandbox is not wired yet (see container_argv)")
    if os.geteuid() == 0 and account is None:
        raise SandboxError("as root, agents need an account of their own to run as")
    with _egress(policy.network, account, limits.connections, redact) as socket_path:
        argv = bubblewrap_argv(
            command,
            workspace,
            context,
            [*policy.read_only, *map(str, shown)],
            limits.scratch,
            socket_path,
        )
        inside = {**env, "HOME": HOME, "TMPDIR": "/tmp"}
        if socket_path:
            inside |= proxy_environment()
        process = _launch(argv, inside, limits, account, cwd=Path("/"))
        return _watch(process, limits, should_stop, _uid(account), disk)


def choose_backend(requested: str | None, account: tuple[int, int] | None = None) -> str:
    """The backend to use: bubblewrap unless the profile names another; never none by default."""
    if requested not in (None, "bubblewrap"):
        if requested not in BACKENDS:
            raise SandboxError(f"no sandbox named {requested!r}")
        return str(requested)
    if not bubblewrap_works(account):
        raise SandboxError(
            "bubblewrap (bwrap) cannot run here (not installed, or user namespaces are off); "
            "agents run only in a sandbox, unless their profile says `sandbox: none`"
        )
    return "bubblewrap"


def bubblewrap_works(account: tuple[int, int] | None = None) -> bool:
    """Whether bwrap starts a sandbox here, as `account`: some kernels forbid user namespaces.

    Only a yes is kept: a no is asked again next time (the kernel's setting may
    change), and a check that does not answer in time (a loaded host) is tried
    again at once with more time, rather than taken for a no."""
    if account in _BWRAP_WORKS:
        return True
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    argv = [bwrap, *_NAMESPACES, "--ro-bind", "/", "/", "--proc", "/proc", "--", "/bin/true"]
    for timeout in BWRAP_CHECK_TIMEOUTS:
        try:
            result = subprocess.run(argv, capture_output=True, timeout=timeout, **_as(account))
        except subprocess.TimeoutExpired:
            log.warning("bwrap did not start a sandbox within %s s; asking again", timeout)
            continue
        except OSError as error:
            log.warning("bwrap cannot be started: %s", error)
            return False
        if result.returncode != 0:
            log.warning("bwrap does not work here: %s", result.stderr.decode(errors="replace"))
            return False
        _BWRAP_WORKS.add(account)
        return True
    return False


_BWRAP_WORKS: set[tuple[int, int] | None] = set()


# New namespaces of every kind, a user namespace the sandbox cannot nest, no
# controlling terminal (TIOCSTI), and death when the worker dies.
_NAMESPACES = [
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
]


def bubblewrap_argv(
    command: Command,
    workspace: Path,
    context: Path | None,
    read_only: Sequence[str] = (),
    scratch: int = Limits(0).scratch,
    proxy_socket: Path | None = None,
) -> list[str]:
    """The bwrap command line running `command` in `workspace` (at the same path)."""
    args = [shutil.which("bwrap") or "bwrap", *_NAMESPACES]
    for path in SYSTEM_DIRS:
        args += _system_dir(path)
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for scratch_dir in ("/tmp", HOME, "/dev/shm"):  # tmpfs is memory: each has a size
        args += ["--size", str(scratch), "--tmpfs", scratch_dir]
    for path in read_only:
        args += ["--ro-bind", path, path]
    if context is not None:
        args += ["--ro-bind", str(context), str(context)]
    args += ["--bind", str(workspace), str(workspace)]
    argv = _argv(command)
    if proxy_socket is not None:
        args += ["--ro-bind", str(proxy_socket), PROXY_SOCKET]
        argv = _with_forwarder(argv)
    # The root and /dev stay as built: writing there would be unsized memory.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(workspace)]
    return [*args, "--", *argv]


def proxy_environment() -> dict[str, str]:
    """What points HTTP clients inside the sandbox at the forwarder (and the egress proxy)."""
    url = f"http://127.0.0.1:{PROXY_PORT}"
    names = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
    # Nothing bypasses it: a model double on the host's loopback is reached through it too.
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


def container_argv(
    engine: str,
    command: Command,
    *,
    workspace: Path,
    context: Path | None,
    env_names: Sequence[str],
    limits: Limits,
    policy: Policy,
    account: tuple[int, int] | None = None,
    proxy_socket: Path | None = None,
) -> list[str]:
    """`docker run` / `podman run` for the same sandbox.

    Variables are named, not valued (`--env NAME`): the engine's client reads the
    values from its own environment, so they are not in any process list. With a
    network list, the image needs python3 for the forwarder (or the argv of
    your own one), as the container has no network but the proxy's socket.
    """
    if engine not in ("docker", "podman"):
        raise SandboxError(f"no container engine named {engine!r}")
    if not policy.image:
        raise SandboxError(f"the {engine} sandbox needs an image")
    args = [engine, "run", "--rm", "--init", "--network", "none", "--read-only"]
    args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    args += ["--memory", str(limits.memory), "--memory-swap", str(limits.memory)]
    args += ["--pids-limit", str(limits.processes)]
    if limits.cpus:
        args += ["--cpus", str(limits.cpus)]
    for scratch_dir in ("/tmp", HOME):
        args += ["--tmpfs", f"{scratch_dir}:size={limits.scratch}"]
    if account is not None:
        args += ["--user", f"{account[0]}:{account[1]}"]
    for path in policy.read_only:
        args += ["--volume", f"{path}:{path}:ro"]
    if context is not None:
        args += ["--volume", f"{context}:{context}:ro"]
    args += ["--volume", f"{workspace}:{workspace}", "--workdir", str(workspace)]
    argv = _argv(command)
    if proxy_socket is not None:
        args += ["--volume", f"{proxy_socket}:{PROXY_SOCKET}"]
        argv = _with_forwarder(argv, python="python3")
        env_names = [*env_names, *proxy_environment()]
    for name in dict.fromkeys([*env_names, "HOME", "TMPDIR"]):
        args += ["--env", name]
    return [*args, policy.image, *argv]


def parse_size(value: object) -> int:
    """Bytes from 1073741824, '1G', '512M', '64K'."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {value!r} (bytes, or a number with K, M, G or T)")
    power = " KMGT".index(match[2].upper() or " ")
    return _positive_int("size", int(match[1]) << (10 * power))


class Usage(NamedTuple):
    threads: int  # of the process and its descendants
    memory: int  # anonymous resident bytes, of the same
    account_threads: int  # of every process of the account, which RLIMIT_NPROC counts


def usage(root: int, account: int) -> Usage:
    """What process `root` and all its descendants hold, from /proc.

    Anonymous memory only (resident minus file-backed): libraries and the page
    cache are shared and reclaimable. Pages a fork shares with its parent count
    in each, so this errs on the side of too much.
    """
    children: dict[int, list[int]] = defaultdict(list)
    held: dict[int, tuple[int, int]] = {}
    account_threads = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            owner = os.stat(f"/proc/{name}").st_uid
            stat = Path(f"/proc/{name}/stat").read_text()
            resident, shared = Path(f"/proc/{name}/statm").read_text().split()[1:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        fields = stat.rpartition(")")[2].split()  # after the command's name, which may hold spaces
        children[int(fields[1])].append(int(name))
        held[int(name)] = (int(fields[17]), (int(resident) - int(shared)) * PAGE)
        account_threads += int(fields[17]) if owner == account else 0
    threads = memory = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        count, size = held.get(pid, (0, 0))
        threads, memory = threads + count, memory + size
        todo += children.get(pid, [])
    return Usage(threads, memory, account_threads)


def _argv(command: Command) -> list[str]:
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


def _with_forwarder(argv: list[str], python: str = SYSTEM_PYTHON) -> list[str]:
    """`argv`, after the forwarder to the egress proxy is listening on PROXY_PORT."""
    script = f'{python} -I -c "$1" "$2" "$3" || exit 125; shift 3; exec "$@"'
    listen = f"127.0.0.1:{PROXY_PORT}"
    return ["/bin/sh", "-c", script, "sh", FORWARDER.read_text(), listen, PROXY_SOCKET, *argv]


def _system_dir(path: str) -> list[str]:
    """/bin is a link to usr/bin on merged-/usr systems, a folder on others: the same inside."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    if os.path.isdir(path):
        return ["--ro-bind", path, path]
    return []


def _unsandboxed(command: Command, account: tuple[int, int] | None) -> list[str]:
    """What ran agents before sandboxes: supervise.py, as the agents' account."""
    line = command if isinstance(command, str) else shlex.join(command)
    run_as = ["--as", f"{account[0]}:{account[1]}"] if account else []
    return [sys.executable, "-I", str(SUPERVISOR), *run_as, line]


@contextmanager
def _egress(
    network: Sequence[str],
    account: tuple[int, int] | None,
    connections: int,
    redact: Callable[[str], str],
) -> Iterator[Path | None]:
    """The egress proxy for one run, on a socket in a folder only the agent's account enters."""
    if not network:
        yield None
        return
    if not os.path.exists(SYSTEM_PYTHON):
        raise SandboxError(f"a network list needs {SYSTEM_PYTHON} for the sandbox's forwarder")
    with tempfile.TemporaryDirectory(prefix="specbridge-egress-") as folder:
        if account is not None and os.geteuid() == 0:
            os.chown(folder, *account)
        socket_path = Path(folder) / "egress.sock"
        with EgressProxy(network, socket_path, connections, redact) as proxy:
            yield proxy.socket_path


def _launch(
    argv: list[str],
    env: Mapping[str, str],
    limits: Limits,
    account: tuple[int, int] | None,
    cwd: Path,
) -> subprocess.Popen[bytes]:
    # prlimit, not preexec_fn: the worker has threads, and preexec_fn is unsafe then.
    prlimit = [
        shutil.which("prlimit") or "/usr/bin/prlimit",
        f"--as={limits.address_space}",
        f"--nproc={limits.processes}",
        "--core=0",
        f"--fsize={limits.disk}",
        "--",
    ]
    return subprocess.Popen(
        [*prlimit, *argv],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # out of reach of a kill aimed at the worker's group
        **_as(account),
    )


def _as(account: tuple[int, int] | None) -> dict[str, object]:
    """Popen's arguments to start as `account` (only root can, and needs to)."""
    if account is None or os.geteuid() != 0:
        return {}
    return {"user": account[0], "group": account[1], "extra_groups": []}


def _uid(account: tuple[int, int] | None) -> int:
    """The user the command runs as."""
    return account[0] if account is not None and os.geteuid() == 0 else os.getuid()


def _watch(
    process: subprocess.Popen[bytes],
    limits: Limits,
    should_stop: Callable[[], bool],
    uid: int,
    disk: _DiskWatch,
) -> Outcome:
    assert process.stdout is not None
    tail = OutputTail(OUTPUT_TAIL_BYTES)
    reader = threading.Thread(target=tail.read_all, args=(process.stdout,), daemon=True)
    reader.start()
    reason = _wait(process, limits, should_stop, uid, disk)
    if reason != "exit":
        _stop(process)
    elif disk.over():  # it ended on its own, the kernel's RLIMIT_FSIZE may have ended it
        reason = "disk"
    reader.join(timeout=5)
    return Outcome(process.returncode, tail.text(), reason, tail.seen)


def _wait(
    process: subprocess.Popen[bytes],
    limits: Limits,
    should_stop: Callable[[], bool],
    uid: int,
    disk: _DiskWatch,
) -> str:
    """Wait for the command to end ("exit"), or for a reason to end it."""
    deadline = time.monotonic() + limits.timeout
    next_stop_check = time.monotonic() + STOP_CHECK_SECONDS
    while True:
        try:
            process.wait(timeout=WATCH_SECONDS)
            return "exit"
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        held = usage(process.pid, uid)
        if now >= deadline:
            return "timeout"
        if held.memory >= limits.memory:
            return "memory"
        if _at_process_limit(held, limits.processes):
            return "processes"
        if disk.due(now) and disk.over():
            return "disk"
        if now >= next_stop_check:
            if should_stop():
                return "stopped"
            next_stop_check = now + STOP_CHECK_SECONDS


def _at_process_limit(held: Usage, limit: int) -> bool:
    """Whether the sandbox holds its account's last processes.

    The kernel counts all the account's processes: the bot's own, when it runs
    agents as itself (not root), and other runs' sharing the account. So: at
    the limit, and the larger holder of what is held.
    """
    return held.threads >= limit or (
        held.account_threads >= limit and 2 * held.threads > held.account_threads
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the sandbox: bwrap's death takes its PID namespace, and so every process in it,
    with it; supervise.py (sandbox none) kills its agent's group on SIGTERM."""
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


class OutputTail:
    """The last `size` bytes of a stream, read in chunks: never a whole line held."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen = 0
        self._kept = bytearray()
        self._at_line_start = True  # what is kept starts a line

    def read_all(self, stream: IO[bytes]) -> None:
        fd = stream.fileno()
        while chunk := os.read(fd, READ_CHUNK):
            self.add(chunk)

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        self._kept += chunk
        excess = len(self._kept) - self.size
        if excess > 0:
            self._at_line_start = self._kept[excess - 1 : excess] == b"\n"
            del self._kept[:excess]

    def text(self) -> str:
        kept = bytes(self._kept)
        if self.seen > len(kept):
            if not self._at_line_start and b"\n" in kept:
                kept = kept[kept.index(b"\n") + 1 :]  # from the first whole line
            kept = f"[{self.seen - len(kept)} bytes of output before these]\n".encode() + kept
        # Output is stored and posted as text: NUL is not text (and PostgreSQL refuses it).
        return kept.decode(errors="replace").replace("\x00", "\ufffd")


class _DiskWatch:
    """How much the workspace grew since the run began, measured now and then."""

    def __init__(self, workspace: Path, limit: int, baseline: int | None) -> None:
        self.workspace = workspace
        self.limit = limit
        self.baseline = tree_size(workspace) if baseline is None else baseline
        self._next = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next

    def over(self) -> bool:
        started = time.monotonic()
        grown = tree_size(self.workspace, stop_past=self.baseline + self.limit) - self.baseline
        took = time.monotonic() - started
        self._next = time.monotonic() + max(DISK_CHECK_SECONDS, 10 * took)
        return grown >= self.limit


def tree_size(root: Path, stop_past: int | None = None) -> int:
    """Bytes held by `root` and everything in it (never through a link), each entry counted
    at least DISK_ENTRY_BYTES; the walk stops once past `stop_past`."""
    total = 0
    todo = [str(root)]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    held = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(held.st_blocks * 512, DISK_ENTRY_BYTES)
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
        if stop_past is not None and total > stop_past:
            break
    return total


def _positive_int(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{what} must be a whole number > 0, not {value!r}")
    return value
