"""A spec's task graph as inline SVG, laid out on the server: no script, no front-end build,
nothing fetched. The same graph the tracking issue draws in Mermaid (bot/sync/task_graph.py).

Layout: each task sits one row below the lowest task it depends on (longest path from
a task with no dependency), ordered within its row by where its dependencies sit (one
barycentre pass), then by its place in the spec. Edges are curves from a task's bottom
to its dependant's top.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from bot.sync.task_graph import COLOURS, FAILED, TaskGraph

NODE_WIDTH = 184
NODE_HEIGHT = 46
GAP_X = 20
GAP_Y = 34
MARGIN = 6
TITLE_CHARS = 27


def graph_svg(graph: TaskGraph, issue_url: str | None = None) -> str:
    """SVG markup; issue_url with `{number}` makes each task a link to its issue."""
    rows = _rows(graph)
    place: dict[int, tuple[float, float]] = {}
    width = max(len(row) for row in rows) * (NODE_WIDTH + GAP_X) - GAP_X + 2 * MARGIN
    height = len(rows) * (NODE_HEIGHT + GAP_Y) - GAP_Y + 2 * MARGIN
    for depth, row in enumerate(rows):
        row_width = len(row) * (NODE_WIDTH + GAP_X) - GAP_X
        left = MARGIN + (width - 2 * MARGIN - row_width) / 2
        for index, node_id in enumerate(row):
            top = MARGIN + depth * (NODE_HEIGHT + GAP_Y)
            place[node_id] = (left + index * (NODE_WIDTH + GAP_X), top)
    parts = [
        f'<svg class="task-graph" xmlns="http://www.w3.org/2000/svg" width="{width:g}" '
        f'height="{height:g}" viewBox="0 0 {width:g} {height:g}" role="img" '
        f'aria-label="{len(graph.nodes)} tasks and their dependencies">',
        '<g class="edges" fill="none" stroke="#8c959f" stroke-width="1.2">',
    ]
    for before, after in graph.edges:
        (x1, y1), (x2, y2) = place[before], place[after]
        x1, y1 = x1 + NODE_WIDTH / 2, y1 + NODE_HEIGHT
        x2 = x2 + NODE_WIDTH / 2
        middle = (y1 + y2) / 2
        parts.append(
            f'<path d="M{x1:g},{y1:g} C{x1:g},{middle:g} {x2:g},{middle:g} {x2:g},{y2 - 4:g}"/>'
            f'<path d="M{x2 - 4:g},{y2 - 8:g} L{x2:g},{y2 - 2:g} L{x2 + 4:g},{y2 - 8:g}"/>'
        )
    parts.append("</g>")
    for node in graph.nodes:
        x, y = place[node.id]
        fill, stroke, text = COLOURS.get(node.style, COLOURS["backlog"])
        title = node.title
        if len(title) > TITLE_CHARS:
            title = title[: TITLE_CHARS - 1] + "…"
        heading = f"#{node.number} {node.key}" + (" ⛔" if node.blocked else "")
        heading += " ✗ failed" if node.style == FAILED else ""
        box = (
            f'<g class="node" data-issue="{node.number}" data-style="{escape(node.style)}">'
            f"<title>#{node.number} {escape(node.key)}: {escape(node.title)} ({node.style})</title>"
            f'<rect x="{x:g}" y="{y:g}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + 9:g}" y="{y + 18:g}" fill="{text}" font-size="12" font-weight="600">'
            f"{escape(heading)}</text>"
            f'<text x="{x + 9:g}" y="{y + 35:g}" fill="{text}" font-size="12">'
            f"{escape(title)}</text>"
            "</g>"
        )
        if issue_url:
            href = escape(issue_url.format(number=node.number))
            box = f'<a href="{href}" target="_blank" rel="noopener">{box}</a>'
        parts.append(box)
    parts.append("</svg>")
    return "".join(parts)


def _rows(graph: TaskGraph) -> list[list[int]]:
    """Node ids by row, top to bottom."""
    order = {node.id: index for index, node in enumerate(graph.nodes)}
    parents: dict[int, list[int]] = defaultdict(list)
    for before, after in graph.edges:
        parents[after].append(before)
    depth: dict[int, int] = {}

    def depth_of(node_id: int, seen: frozenset[int] = frozenset()) -> int:
        if node_id not in depth:
            # A cycle cannot pass validation; should one be stored, it is cut where it closes.
            above = [p for p in parents[node_id] if p not in seen]
            depth[node_id] = 1 + max((depth_of(p, seen | {node_id}) for p in above), default=-1)
        return depth[node_id]

    rows: list[list[int]] = []
    for node in graph.nodes:
        level = depth_of(node.id)
        rows.extend([] for _ in range(level + 1 - len(rows)))
        rows[level].append(node.id)
    column: dict[int, float] = {}
    for row in rows:

        def centre(node_id: int) -> float:
            above = [column[p] for p in parents[node_id] if p in column]
            return sum(above) / len(above) if above else float(order[node_id])

        row.sort(key=lambda node_id: (centre(node_id), order[node_id]))
        for index, node_id in enumerate(row):
            column[node_id] = index
    return rows
