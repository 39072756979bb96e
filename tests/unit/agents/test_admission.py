"""Which waiting runs start: caps, files, `[P]`, and a fair turn for every spec."""

from __future__ import annotations

from dataclasses import replace

from bot.agents.admission import Caps, Run, admit

REPO = "acme/rocket"


def run(
    id: int,
    spec: str = "big",
    files: tuple[str, ...] | None = ("src/a.py",),
    *,
    profile: str = "default",
    repository: str = REPO,
    installation: str = "1",
    parallel: bool = False,
    priority: str = "medium",
    position: int | None = None,
) -> Run:
    return Run(
        id=id,
        profile=profile,
        repository=repository,
        installation=installation,
        spec=spec,
        files=files,
        parallel=parallel,
        priority=priority,
        position=id if position is None else position,
        label=f"#{id}",
    )


def distinct(first: int, count: int, spec: str = "big", **values: object) -> list[Run]:
    return [run(i, spec, (f"src/f{i}.py",), **values) for i in range(first, first + count)]  # type: ignore[arg-type]


NO_CAPS = Caps()


def started(waiting: list[Run], active: list[Run] | None = None, caps: Caps = NO_CAPS) -> list[int]:
    """The ids of the runs started, in order."""
    return [r.id for r in admit(waiting, active or [], caps).started]


def test_a_profile_cap_starts_no_more_runs_than_it_allows():
    caps = Caps(profiles={"default": 2})
    assert started(distinct(1, 5), caps=caps) == [1, 2]
    assert started(distinct(3, 3), distinct(1, 1), caps) == [3]
    outcome = admit(distinct(3, 3), distinct(1, 2), caps)
    assert outcome.started == []
    assert "`max_parallel: 2`" in outcome.waiting[3] and "agent `default`" in outcome.waiting[3]


def test_a_profile_cap_counts_only_its_own_runs():
    caps = Caps(profiles={"slow": 1, "fast": None})
    waiting = distinct(1, 3, profile="slow") + distinct(10, 3, profile="fast")
    assert sorted(started(waiting, caps=caps)) == [1, 10, 11, 12]


def test_repository_and_installation_caps_hold_across_specs():
    waiting = distinct(1, 4, "one") + distinct(10, 4, "two")
    assert len(started(waiting, caps=Caps(repositories={REPO: 3}))) == 3
    other = distinct(20, 4, "three", repository="acme/other")
    assert len(started(waiting + other, caps=Caps(per_installation=5))) == 5
    # another installation has a slot of its own
    theirs = distinct(30, 2, "four", repository="beta/x", installation="2")
    assert set(started(waiting + theirs, caps=Caps(per_installation=1))) == {1, 30}


def test_two_tasks_naming_the_same_file_never_run_at_once():
    waiting = [run(1, files=("src/api/users.py",)), run(2, files=("src/api/*.py",))]
    outcome = admit(waiting, [], Caps())
    assert [r.id for r in outcome.started] == [1]
    assert outcome.waiting[2] == "#1 to finish: its agent works on the same files"


def test_files_conflict_across_specs_of_one_repository_only():
    mine = run(1, "one", files=("src/app.py",))
    assert started([run(2, "two", files=("src/app.py",))], [mine]) == []
    elsewhere = run(3, "two", files=("src/app.py",), repository="acme/other")
    assert started([elsewhere], [mine]) == [3]


def test_a_task_without_files_runs_alone_in_its_spec_unless_parallel():
    unknown = [run(1, files=None), run(2, files=None), run(3, files=("docs/x.md",))]
    outcome = admit(unknown, [], Caps())
    assert [r.id for r in outcome.started] == [1]
    assert "names no files, so it runs alone in its spec" in outcome.waiting[2]
    marked = [run(i, files=None, parallel=True) for i in (1, 2, 3)]
    assert started(marked) == [1, 2, 3]
    # a spec's task without files does not hold up another spec's
    assert started([run(5, "other", files=None)], [run(1, files=None)]) == [5]


def test_parallel_tasks_that_name_the_same_file_still_wait_for_each_other():
    waiting = [run(i, files=("src/same.py",), parallel=True) for i in (1, 2)]
    assert started(waiting) == [1]


def test_within_a_spec_the_most_urgent_task_starts_first():
    waiting = [
        run(1, priority="low"),
        run(2, priority="critical", files=("src/b.py",)),
        run(3, priority="high", files=("src/c.py",)),
    ]
    assert started(waiting, caps=Caps(profiles={"default": 2})) == [2, 3]


def test_a_small_spec_is_not_starved_by_a_large_one():
    big = distinct(1, 300, "big")
    small = distinct(1000, 3, "small")
    caps = Caps(profiles={"default": 2})
    assert started(big + small, caps=caps) == [1, 1000]
    # with the big spec holding a slot, the free one goes to the small spec
    assert started(big[1:] + small, [big[0]], caps) == [1000]
    assert started(big[1:] + small[1:], [big[0], small[0]], Caps(profiles={"default": 4})) == [
        2,
        1001,
    ]


def test_turns_go_round_repositories_before_their_specs():
    waiting = (
        distinct(1, 3, "a1") + distinct(10, 3, "a2") + distinct(20, 3, "b1", repository="beta/x")
    )
    first_three = started(waiting, caps=Caps(per_installation=3))
    assert {20} <= set(first_three) and len({i // 10 for i in first_three}) == 3


def test_a_blocked_spec_gives_its_turn_to_the_next():
    active = [run(1, "a", files=None)]
    waiting = [run(2, "a", files=None), run(3, "b", files=("src/z.py",))]
    assert started(waiting, active) == [3]


def test_every_run_left_waiting_has_a_reason():
    waiting = distinct(1, 10, "a") + distinct(20, 10, "b")
    outcome = admit(waiting, [], Caps(profiles={"default": 3}))
    left = {r.id for r in waiting} - {r.id for r in outcome.started}
    assert set(outcome.waiting) == left
    assert all(outcome.waiting[i] for i in left)


def test_a_task_that_runs_alone_is_not_starved_by_the_tasks_behind_it():
    active = [run(1, files=("src/a.py",))]
    waiting = [run(2, files=None), run(3, files=("src/c.py",))]
    outcome = admit(waiting, active, Caps())
    assert outcome.started == []
    assert "runs alone in its spec" in outcome.waiting[2]
    assert outcome.waiting[3].startswith("#2, ahead of it in its spec, which names no files")
    assert started(waiting) == [2]  # the spec drained: it runs, alone


def test_attempts_at_one_ticket_run_side_by_side_on_their_own_branches():
    first = replace(run(1, files=None), ticket=7)
    second = replace(run(2, files=None), ticket=7)
    assert started([first, second]) == [1, 2]
    other = replace(run(3, files=None), ticket=8)
    assert started([other], [first]) == []


def test_no_more_runs_start_than_the_workers_have_agent_slots_and_hosted_runs_take_none():
    caps = Caps(worker_slots=2)
    assert started(distinct(1, 5), caps=caps) == [1, 2]
    outcome = admit(distinct(3, 3), distinct(1, 2), caps)
    assert outcome.started == []
    assert outcome.waiting[3].startswith("a free agent slot: 2 runs hold the 2 agent slots")
    # an agent GitHub runs holds no worker's slot, and needs none to start
    hosted = [replace(r, on_worker=False) for r in distinct(10, 3, "other")]
    assert sorted(started(hosted, distinct(1, 2), caps)) == [10, 11, 12]
