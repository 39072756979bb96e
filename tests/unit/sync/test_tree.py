"""Where tickets hang: groups of 100 under the tracking issue, filled in order."""

from __future__ import annotations

from bot.sync.tree import place
from storage.models import IssueGroup, Ticket


def _groups(*positions: int) -> list[IssueGroup]:
    return [IssueGroup(id=p, position=p) for p in positions]


def _linked(counts: dict[int, int]) -> list[Ticket]:
    return [Ticket(group_id=g) for g, n in counts.items() for _ in range(n)]


def test_groups_a_stopped_sync_left_empty_are_filled_before_any_new_one() -> None:
    """A sync that created three groups and stopped before creating tickets: the
    continuation fills them, and creates none (it used to create more each time)."""
    placement = place(_groups(1, 2, 3), [], 300)
    assert placement.new_groups == []
    assert placement.parents == [1] * 100 + [2] * 100 + [3] * 100


def test_new_tickets_fill_the_last_group_then_new_groups_follow() -> None:
    placement = place(_groups(1, 2), _linked({1: 100, 2: 60}), 70)
    assert placement.parents == [2] * 40 + [3] * 30
    assert placement.new_groups == [3]


def test_a_group_emptied_before_the_last_one_is_not_filled_again() -> None:
    """Tickets never move and the tree stays as people know it: room in an earlier group
    (its tickets removed) is left alone."""
    placement = place(_groups(1, 2), _linked({1: 10, 2: 50}), 10)
    assert placement.parents == [2] * 10
