"""Where each ticket hangs under its spec's tracking issue.

GitHub allows at most 100 sub-issues under one issue, closed ones included,
and 8 levels of nesting. A spec of up to 100 tickets hangs them directly under
its tracking issue. The first time a spec needs more, its tickets move once
into numbered group issues ("part 1", "part 2", …) of at most 100 each, under
the tracking issue; from then on new tickets fill the last group and new
groups follow. A ticket never moves again, whatever is added or removed, so
the tree stays as people know it. Up to 100 groups: 10,000 tickets a spec.
Groups a sync created and stopped before filling (a pause, a crash) are filled
first, in order, before any new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from storage.models import IssueGroup, Ticket

CAPACITY = 100


class SpecTooLarge(ValueError):
    """More tickets than 100 groups of 100 can hold."""


@dataclass
class Placement:
    """Parents for tickets to link: `None` is the tracking issue, an int a group's position."""

    new_groups: list[int] = field(default_factory=list)
    moves: list[tuple[Ticket, int]] = field(default_factory=list)  # linked tickets → group
    parents: list[int | None] = field(default_factory=list)  # one per ticket to place, in order


def place(groups: Sequence[IssueGroup], linked: Sequence[Ticket], count: int) -> Placement:
    """Parents for `count` more tickets, given the groups and the tickets already linked."""
    placement = Placement()
    direct = [t for t in linked if t.group_id is None]
    if not groups and len(direct) + count <= CAPACITY:
        placement.parents = [None] * count
        return placement
    sizes = {g.position: sum(1 for t in linked if t.group_id == g.id) for g in groups}
    to_group: list[Ticket | None] = [*direct, *[None] * count] if not groups else [None] * count
    for ticket in to_group:
        position = _next_with_room(sizes)
        if position is None:
            position = max(sizes, default=0) + 1
            sizes[position] = 0
            placement.new_groups.append(position)
        sizes[position] += 1
        if ticket is None:
            placement.parents.append(position)
        else:
            placement.moves.append((ticket, position))
    if len(sizes) + (len(direct) if groups else 0) > CAPACITY:
        raise SpecTooLarge(
            f"{len(linked) + count} tickets need {len(sizes)} groups; "
            f"a tracking issue holds at most {CAPACITY}"
        )
    return placement


def _next_with_room(sizes: dict[int, int]) -> int | None:
    """The group being filled: the last one holding tickets, or the first empty one after
    it (created by a sync that stopped before filling it); None when a new one is needed."""
    if not sizes:
        return None
    used = [position for position, size in sizes.items() if size]
    start = max(used) if used else min(sizes)
    return next((p for p in sorted(sizes) if p >= start and sizes[p] < CAPACITY), None)
