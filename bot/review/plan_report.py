"""The plan of a merge as markdown: the `specbridge` check's title and summary,
and what `specbridge plan` prints.

GitHub keeps at most 65,535 characters of a check's summary: a plan too long
for that loses its graphs first, then its end, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.github.checks import MAX_OUTPUT
from bot.sync.plan import Plan, SpecDiff
from bot.sync.render import graph_label, shown
from bot.sync.task_graph import MAX_GRAPH_NODES
from specs.model import Finding

CUT_NOTE = "\n\n_The plan is longer than GitHub shows; run `specbridge plan` to see all of it._\n"
_CLASSES = {
    "new": "fill:#ddf4ff,stroke:#54aeff",
    "changed": "fill:#fff8c5,stroke:#d4a72c",
    "same": "fill:#f6f8fa,stroke:#d0d7de",
}


def title(plan: Plan) -> str:
    errors = sum(1 for f in plan.findings if f.is_error)
    if errors:
        files = len(plan.invalid)
        return f"{_count(errors, 'error')} in {_count(files, 'spec file')}"
    opened = sum(len(d.open) for d in plan.diffs)
    adopted = sum(len(d.adopt) for d in plan.diffs)
    changed = sum(len(d.change) for d in plan.diffs)
    closed = sum(len(d.close) for d in plan.diffs)
    if not (opened or adopted or changed or closed):
        return "Valid; the merge changes no issue"
    adopts = f", adopts {adopted}" if adopted else ""
    return f"Valid; the merge opens {opened}{adopts}, changes {changed} and closes {closed} issues"


def summary(plan: Plan, heading: str, notes: Sequence[str] = ()) -> str:
    """The whole plan, within GitHub's limit on a check's summary."""
    for graphs in (True, False):
        text = _markdown(plan, heading, notes, graphs)
        if len(text) <= MAX_OUTPUT:
            return text
    return text[: MAX_OUTPUT - len(CUT_NOTE)] + CUT_NOTE


def _markdown(plan: Plan, heading: str, notes: Sequence[str], graphs: bool) -> str:
    lines = [f"## {heading}", ""]
    lines += [*(f"> {note}" for note in notes), ""] if notes else []
    for path, findings in sorted(plan.invalid.items()):
        errors = sum(1 for f in findings if f.is_error)
        lines += [
            f"### `{path}` does not validate",
            "",
            f"{_count(errors, 'error')}, shown on the file's lines; nothing of it is synced.",
            "",
        ]
        lines += [f"- {_where(f, path)}: {shown(f.message)}" for f in findings]
        lines.append("")
    for diff in sorted(plan.diffs, key=lambda d: d.path):
        lines += _spec_section(diff, graphs)
    if not plan.invalid and not plan.diffs:
        lines += ["No spec file changes.", ""]
    return "\n".join(lines)


def _spec_section(diff: SpecDiff, graphs: bool) -> list[str]:
    lines = [f"### `{diff.path}`: {shown(diff.title)} (`{diff.spec_id}`)", ""]
    if diff.removed:
        what = "The folder's spec files are" if diff.path.endswith("/") else "The file is"
        lines += [f"{what} deleted: the spec is cancelled.", ""]
    elif not diff.produces_tickets:
        return [*lines, "Not in the `tasks` phase yet: recorded, no issue is opened.", ""]
    if diff.open_tracking_issue:
        lines.append(f"- **Opens** the tracking issue _Spec: {shown(diff.title)}_")
    if diff.open:
        lines.append(f"- **Opens** {_count(len(diff.open), 'issue')}:")
        lines += [f"  - `{t.id}` {shown(t.title)}{_waits_on(t.depends_on)}" for t in diff.open]
    if diff.adopt:
        lines.append(
            f"- **Adopts** {_count(len(diff.adopt), 'issue')} proposed on GitHub "
            "(no new issue; it becomes the task's):"
        )
        lines += [
            f"  - #{number} `{t.id}` {shown(t.title)}{_waits_on(t.depends_on)}"
            for t, number in diff.adopt
        ]
    if diff.done_at_once:
        lines.append(
            "- **Closes as completed** at once, ticked done in the file: "
            + ", ".join(f"`{key}`" for key in diff.done_at_once)
        )
    for change in diff.change:
        lines.append(
            f"- **Changes** #{change.issue_number} `{change.key}`: {', '.join(change.changes)}"
        )
    if diff.close:
        lines.append(f"- **Closes as not planned** {_count(len(diff.close), 'issue')}:")
        lines += [f"  - #{number} `{key}`" for key, number in diff.close]
    if diff.removed and diff.tracking_issue is not None:
        lines.append(f"- **Closes as not planned** the tracking issue #{diff.tracking_issue}")
    if diff.reopen:
        lines.append(f"- **Reopens** {', '.join(f'#{n} `{k}`' for k, n in diff.reopen)}")
    if diff.renumbered:
        lines.append(
            f"- **Renumbered?** {_count(len(diff.renumbered), 'task')} would get a new issue "
            "under a new id while the issue of the same title closes; keep the old id to keep "
            "the issue:"
        )
        lines += [
            f"  - `{r.old_key}` → `{r.new_key}` {shown(r.title)}: #{r.issue_number} "
            + ("gets another task's title" if r.retitled else "closes")
            for r in diff.renumbered
        ]
    if diff.start_now:
        lines.append(f"- **Starts at once**: {', '.join(f'`{key}`' for key in diff.start_now)}")
    if not diff.writes_anything:
        lines.append("- No issue changes.")
    lines.append("")
    return lines + (_graph(diff) if graphs else [])


def _graph(diff: SpecDiff) -> list[str]:
    """The new version's tasks and dependencies; new and changed tasks stand out."""
    if not diff.tasks or len(diff.tasks) > MAX_GRAPH_NODES:
        return []
    node = {task.id: f"t{n}" for n, task in enumerate(diff.tasks)}
    changed = {c.key for c in diff.change}
    lines = ["```mermaid", "graph TD"]
    for task in diff.tasks:
        number = diff.issue_numbers.get(task.id)
        label = graph_label(f"#{number} {task.id}" if number else f"new: {task.id}", task.title)
        kind = "new" if number is None else "changed" if task.id in changed else "same"
        lines.append(f'  {node[task.id]}["{label}"]:::{kind}')
    for task in diff.tasks:
        lines += [f"  {node[d]} --> {node[task.id]}" for d in task.depends_on if d in node]
    lines += [f"  classDef {kind} {style}" for kind, style in _CLASSES.items()]
    return [*lines, "```", ""]


def _where(finding: Finding, spec_path: str) -> str:
    """line L, column C; with the file's name when the spec is a folder of files."""
    at = f"line {finding.line}, column {finding.column}"
    return at if finding.path == spec_path else f"`{finding.path}` {at}"


def _waits_on(keys: Sequence[str]) -> str:
    return f" (after {', '.join(f'`{k}`' for k in keys)})" if keys else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
