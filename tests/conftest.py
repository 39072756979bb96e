"""What every test shares: the database fixtures, and how the suite runs.

How the suite runs (docs/development/tests.md):

- Side by side: pytest-xdist runs the tests in `-n auto` worker processes, 1.5 a core
  (pyproject's addopts; `-n 0` runs them in this process, for a debugger). So each test
  must be safe beside another in its own process: a database of its own (the fixtures below make
  one), ports from `free_port()`, files under `tmp_path`. With REDIS_URL set, each
  worker gets a Redis of its own (a `redis-server` it starts, see
  `_a_redis_of_its_own`): tests flush their Redis, and two workers on one server would
  flush each other's.
- Heavy tests run when asked. Mark a test (or a module, with `pytestmark`)
  `@pytest.mark.heavy` when it needs a big download or runs for minutes: the real agent
  CLIs (1.6 GB, fakehub/agent_clis.py), the slowest end-to-end runs. `python -m pytest`
  leaves them out and says so; `-m heavy` runs them alone, SPECBRIDGE_HEAVY_TESTS=1 runs
  everything, and naming a heavy test's file or id on the command line runs it.
  `.ci/run` runs everything.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

# Importing fakehub finds GitHub's published descriptions, or fetches them once,
# before any test module reads them: when they cannot be had, this conftest fails
# to load with one error saying what to do, instead of every test failing.
import fakehub.fixtures  # noqa: F401
from storage.db import new_session, session_scope
from storage.migrate import upgrade
from storage.models import Base
from tests.databases import create_empty_database, drop_database
from tests.support import jobs_end_with_the_test

# Holding a database transaction open across a call to GitHub is an error in
# tests (a warning in production): see bot/github/connection.py.
os.environ["SPECBRIDGE_CHECK_TRANSACTIONS"] = "1"

HEAVY = "heavy"
HEAVY_TESTS_VARIABLE = "SPECBRIDGE_HEAVY_TESTS"


def pytest_report_header(config: pytest.Config) -> str | None:
    if _heavy_asked(config):
        return None
    return (
        "heavy tests (real agent CLIs, the slowest end-to-end runs) are left out: "
        f"-m {HEAVY} runs them, {HEAVY_TESTS_VARIABLE}=1 runs everything"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the heavy tests out unless asked (see this module's docstring)."""
    if _heavy_asked(config):
        return
    named = _named_files(config)
    left_out = [i for i in items if i.get_closest_marker(HEAVY) and i.path not in named]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        leaving = set(left_out)
        items[:] = [item for item in items if item not in leaving]


def _heavy_asked(config: pytest.Config) -> bool:
    # A -m expression of one's own chooses by itself, heavy tests included.
    return bool(config.option.markexpr) or os.environ.get(HEAVY_TESTS_VARIABLE) == "1"


def _named_files(config: pytest.Config) -> set[Path]:
    """The test files named on the command line (alone or by a test's id)."""
    files = set()
    for argument in config.args:
        path = Path(config.invocation_params.dir, argument.split("::")[0]).resolve()
        if path.is_file():
            files.add(path)
    return files


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: half again as many workers as cores. An end-to-end test spends most of
    its time waiting (its processes starting, GitHub's pace, a queue's turn), so two
    cores keep three workers busy. PYTEST_XDIST_AUTO_NUM_WORKERS, when set, decides."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0))
    return cores + (cores + 1) // 2


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("REDIS_URL"):
        config.stash[_OWN_REDIS] = _a_redis_of_its_own(worker)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_REDIS, None)
    if own is not None:
        process, folder = own
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


_OWN_REDIS = pytest.StashKey[tuple[subprocess.Popen[bytes], Path]]()


def _dies_with_its_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when the worker ends
    (Linux's PR_SET_PDEATHSIG; elsewhere pytest_unconfigure alone stops it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _a_redis_of_its_own(worker: str) -> tuple[subprocess.Popen[bytes], Path]:
    """An empty Redis for this xdist worker, on a port of its own, keeping nothing on disk;
    REDIS_URL names it from here on (for the tests and the processes they start)."""
    from tests.e2e.harness import free_port, redis_answers

    server = shutil.which("redis-server")
    if server is None:
        raise pytest.UsageError(
            "with REDIS_URL set, each test worker needs a Redis of its own: install "
            "redis-server, or run the tests in one process (-n 0) on REDIS_URL's Redis"
        )
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix=f"specbridge-tests-redis-{worker}-"))
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(folder), "--logfile", str(folder / "redis.log")]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_dies_with_its_parent,  # a worker that ends abruptly leaves none behind
    )
    deadline = time.monotonic() + 30
    while not redis_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise pytest.UsageError(f"the Redis of test worker {worker} did not start: {folder}")
        time.sleep(0.05)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return process, folder


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command under test that sets up logging (serve, worker) leaves no handler behind."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _jobs_end_with_their_test() -> Iterator[None]:
    """A job a test left on the embedded queue never runs in the next (tests/support.py)."""
    with jobs_end_with_the_test():
        yield


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A new database with no tables, dropped afterwards."""
    url = create_empty_database(tmp_path)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the whole run (PostgreSQL when DATABASE_URL is set)."""
    url = create_empty_database(tmp_path_factory.mktemp("db"))
    upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture
def db(database_url: str) -> Iterator[str]:
    """The shared migrated database, emptied after the test."""
    yield database_url
    with session_scope(database_url) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture
def session(db: str) -> Iterator[Session]:
    """A session on the shared database, as the bot makes them, rolled back after the test."""
    with new_session(db) as session:
        yield session
        session.rollback()
