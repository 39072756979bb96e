"""Which waiting runs start now: caps, files, and a fair turn for every spec.

Pure: it sees runs as plain values and knows nothing of the database or GitHub, so
the fleet's whole policy is here, in one place the scheduler calls (bot/agents/fleet.py).

- Caps: a profile's `max_parallel` (everywhere), a repository's (its settings file),
  an installation's (SPECBRIDGE_MAX_PARALLEL), and the agent slots of the workers
  running (one a `specbridge worker`): a run queued beyond them would wait in the
  queue's first-come order, where no turn is fair. Runs queued or running hold a slot.
- Files: two runs whose files overlap (specs/paths.py) never run at once; a run
  whose files are unknown runs alone in its spec, unless it is marked parallel
  (spec-kit's `[P]`, `parallel: true`); while it waits for its spec to drain, none
  of the spec's less urgent runs start (it would wait for ever).
- Fairness: each free slot goes to the repository with the fewest runs, then its
  spec with the fewest, and there to the most urgent task (priority, then the
  spec's order). A 300-task spec holds one slot's turn, as a 3-task one does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from specs.paths import overlap

PRIORITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class Run:
    """A run that holds a slot (`active`) or waits for one."""

    id: int  # the Task's id
    profile: str
    repository: str  # owner/name
    installation: str  # one key per installation (the token's, without one)
    spec: str  # one key per spec of the repository
    files: tuple[str, ...] | None = None  # globs; None: unknown
    parallel: bool = False
    priority: str = "medium"
    position: int = 0  # its place in the spec
    label: str = ""  # how a person names it: "#12"
    ticket: int = 0  # several attempts at one ticket (0: unknown) work on branches of their own
    on_worker: bool = True  # run by a worker's agent slot (not an agent GitHub runs)

    @property
    def urgency(self) -> tuple[int, int, int]:
        return (PRIORITY_ORDER.get(self.priority, 2), self.position, self.id)


@dataclass(frozen=True)
class Caps:
    """The most runs at once, by profile, by repository, per installation, and in the
    workers' agent slots (None: no cap)."""

    profiles: Mapping[str, int | None] = field(default_factory=dict)
    repositories: Mapping[str, int | None] = field(default_factory=dict)
    per_installation: int | None = None
    worker_slots: int | None = None


@dataclass
class Admission:
    started: list[Run]
    waiting: dict[int, str]  # a waiting run's id → why it waits, as a sentence's end


def admit(waiting: Iterable[Run], active: Iterable[Run], caps: Caps) -> Admission:
    """The waiting runs to start now, in order, and why each of the others waits."""
    holding = list(active)
    queues = _queues(waiting)
    started: list[Run] = []
    reasons: dict[int, str] = {}
    while queues:
        picked = _next_turn(queues, holding)
        if picked is None:
            break
        repository, spec = picked
        queue = queues[repository][spec]
        run = None
        for candidate in queue:
            reason = why_not(candidate, holding, caps)
            if reason is None:
                run = candidate
                break
            reasons[candidate.id] = reason
            if _runs_alone(candidate):
                break  # none start behind it, or it would wait for ever: the spec drains
        if run is None:  # nothing of this spec can start now: its turn is spent
            for behind in (r for r in queue if r.id not in reasons):
                reasons[behind.id] = _behind(queue, holding, caps, behind)
            del queues[repository][spec]
            if not queues[repository]:
                del queues[repository]
            continue
        queue.remove(run)
        reasons.pop(run.id, None)
        if not queue:
            del queues[repository][spec]
            if not queues[repository]:
                del queues[repository]
        holding.append(run)
        started.append(run)
    for spec_queues in queues.values():
        for queue in spec_queues.values():
            for run in queue:
                reasons.setdefault(run.id, why_not(run, holding, caps) or _TURN)
    return Admission(started, reasons)


_TURN = "its turn: other specs' tasks started first, one each in turn"


def why_not(run: Run, active: Sequence[Run], caps: Caps) -> str | None:
    """Why the run cannot start beside the active ones, or None when it can."""
    profile_cap = caps.profiles.get(run.profile)
    if profile_cap is not None:
        count = sum(1 for other in active if other.profile == run.profile)
        if count >= profile_cap:
            return (
                f"a slot of the agent `{run.profile}`: {count} of its runs are under way, "
                f"the most its profile allows (`max_parallel: {profile_cap}`)"
            )
    repository_cap = caps.repositories.get(run.repository)
    if repository_cap is not None:
        count = sum(1 for other in active if other.repository == run.repository)
        if count >= repository_cap:
            return (
                f"a slot of {run.repository}: {count} agent runs are under way there, the "
                f"most its settings allow (`max_parallel: {repository_cap}`)"
            )
    if caps.per_installation is not None:
        count = sum(1 for other in active if other.installation == run.installation)
        if count >= caps.per_installation:
            return (
                f"a slot of the installation: {count} agent runs are under way, the most "
                f"the operator allows (SPECBRIDGE_MAX_PARALLEL={caps.per_installation})"
            )
    if caps.worker_slots is not None and run.on_worker:
        count = sum(1 for other in active if other.on_worker)
        if count >= caps.worker_slots:
            return (
                f"a free agent slot: {count} runs hold the {caps.worker_slots} agent slots of "
                "the workers running (one a `specbridge worker`)"
            )
    for other in active:
        conflict = _conflict(run, other)
        if conflict is not None:
            return conflict
    return None


def _conflict(run: Run, other: Run) -> str | None:
    """Why the two cannot run at once, or None when they can."""
    if run.repository != other.repository or (run.ticket and run.ticket == other.ticket):
        return None  # elsewhere, or another attempt at the same task on its own branch
    who = other.label or f"task {other.id}"
    if run.spec == other.spec:
        if _runs_alone(run):
            return (
                f"{who} to finish: this task names no files, so it runs alone in its spec "
                "(give it `files:`, or `parallel: true`)"
            )
        if _runs_alone(other):
            return f"{who} to finish: it names no files, so it runs alone in its spec"
    if run.files is not None and other.files is not None and overlap(run.files, other.files):
        return f"{who} to finish: its agent works on the same files"
    return None


def _behind(queue: list[Run], holding: Sequence[Run], caps: Caps, run: Run) -> str:
    alone = next(other for other in queue if _runs_alone(other))
    return why_not(run, holding, caps) or (
        f"{alone.label or f'task {alone.id}'}, ahead of it in its spec, which names no "
        "files and so runs alone: the spec's other tasks wait for it"
    )


def _runs_alone(run: Run) -> bool:
    return run.files is None and not run.parallel


def _queues(waiting: Iterable[Run]) -> dict[str, dict[str, list[Run]]]:
    """Waiting runs by repository and spec, each spec's most urgent first."""
    queues: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in waiting:
        queues[run.repository][run.spec].append(run)
    for spec_queues in queues.values():
        for queue in spec_queues.values():
            queue.sort(key=lambda run: run.urgency)
    return queues


def _next_turn(
    queues: Mapping[str, Mapping[str, list[Run]]], holding: Sequence[Run]
) -> tuple[str, str] | None:
    """The (repository, spec) whose turn it is: the fewest runs under way, repository
    first, then spec; ties go to the most urgent task waiting there."""
    by_repository: dict[str, int] = defaultdict(int)
    by_spec: dict[tuple[str, str], int] = defaultdict(int)
    for run in holding:
        by_repository[run.repository] += 1
        by_spec[(run.repository, run.spec)] += 1
    turns = [
        (by_repository[repository], by_spec[(repository, spec)], queue[0].urgency, repository, spec)
        for repository, spec_queues in queues.items()
        for spec, queue in spec_queues.items()
        if queue
    ]
    if not turns:
        return None
    *_, repository, spec = min(turns)
    return repository, spec
