"""The order new issues are created in: ready work first, each after what it waits on."""

from __future__ import annotations

from bot.sync.plan import creation_order
from storage.models import SpecTask


def _task(key: str, depends_on: list[str], position: int, priority: str = "medium") -> SpecTask:
    return SpecTask(key=key, depends_on=depends_on, position=position, priority=priority)


def test_a_1500_task_chain_is_created_from_its_tail():
    keys = [f"T{i:04d}" for i in range(1, 1501)]
    tasks = [_task(key, keys[i + 1 : i + 2], i) for i, key in enumerate(keys)]
    assert [t.key for t in creation_order(tasks, {})] == keys[::-1]


def test_ready_and_urgent_work_comes_first():
    tasks = [
        _task("A", ["B"], 0),
        _task("B", [], 1),
        _task("C", [], 2, priority="critical"),
    ]
    assert [t.key for t in creation_order(tasks, {})] == ["C", "B", "A"]
