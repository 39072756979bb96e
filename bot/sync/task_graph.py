"""A spec's tasks and their dependencies as a graph: what the tracking issue draws in
Mermaid and the status page draws as SVG (bot/web/graph_svg.py), from the same rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.models import IssueState, Ticket, TicketPhase

# More nodes than this and a graph helps no one: the listing says it all.
MAX_GRAPH_NODES = 80
# A node's style: a phase's value, "closed" for an issue closed as not planned, or
# "failed" for an open ticket whose last run failed.
CLOSED = "closed"
FAILED = "failed"
# (fill, stroke, text) by style; the tracking issue's Mermaid and the page's SVG agree.
COLOURS = {
    TicketPhase.BACKLOG.value: ("#eeeeee", "#999999", "#1f2328"),
    TicketPhase.ANALYZING.value: ("#fff3c4", "#d4a72c", "#1f2328"),
    TicketPhase.BUILDING.value: ("#ddf4ff", "#54aeff", "#1f2328"),
    TicketPhase.TESTING.value: ("#fbefff", "#c297ff", "#1f2328"),
    TicketPhase.DONE.value: ("#dafbe1", "#4ac26b", "#1f2328"),
    CLOSED: ("#f6f8fa", "#d0d7de", "#8c959f"),
    FAILED: ("#ffebe9", "#cf222e", "#1f2328"),
}


@dataclass(frozen=True)
class GraphNode:
    id: int  # the ticket's row id
    number: int  # its issue's number
    key: str  # the spec task's id
    title: str
    style: str  # a key of COLOURS
    blocked: bool = False


@dataclass(frozen=True)
class TaskGraph:
    nodes: list[GraphNode]
    edges: list[tuple[int, int]]  # (the ticket depended on, the ticket waiting), by row id


def task_graph(tickets: Sequence[Ticket]) -> TaskGraph | None:
    """The spec's live tickets and their dependencies; None when there is nothing to draw
    or more than MAX_GRAPH_NODES."""
    drawn = [t for t in tickets if t.spec_task is not None and t.state is not IssueState.DELETED]
    if not drawn or len(drawn) > MAX_GRAPH_NODES:
        return None
    nodes = []
    for ticket in drawn:
        assert ticket.spec_task is not None
        nodes.append(
            GraphNode(
                ticket.id,
                ticket.issue_number,
                ticket.spec_task.key,
                ticket.spec_task.title,
                style_of(ticket),
                ticket.blocked and ticket.state is IssueState.OPEN,
            )
        )
    ids = {node.id for node in nodes}
    # In a fixed order: the rows come back in whatever order the database keeps them,
    # and the same graph drawn in another order is a rewrite of the tracking issue.
    edges = [
        (depends_on, ticket.id)
        for ticket in drawn
        for depends_on in sorted(d.depends_on_id for d in ticket.dependencies)
        if depends_on in ids
    ]
    return TaskGraph(nodes, edges)


def style_of(ticket: Ticket) -> str:
    if ticket.state is not IssueState.OPEN and ticket.state_reason != "completed":
        return CLOSED
    if ticket.state is not IssueState.OPEN:
        return TicketPhase.DONE.value
    return FAILED if ticket.failure else ticket.phase.value
