"""What the tasks.md of spec-kit and of Kiro have in common, read as people write them.

Both are Markdown checklists, and real files stray from the templates in the same
ways: ids in bold or backticks (`**T001**`, `` `T001` ``), a letter after an id
inserted later (`T002a`, `10a.1`), a Markdown formatter's escapes (`- [x]\\* 20.1`),
tasks written as headings with their steps as checkboxes below (`### T003 - Title`,
`## Task 2: Title`), sub-tasks under a heading that groups them (`### 2. Parent`),
checklists that are not tasks (a "Definition of done" at the end), lines wrapped
onto the next. This module turns a file into its task entries, each with its line,
and says what it could not read; spec_kit.py and kiro.py give them their meaning
(ids, requirements, dependencies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from specs.importers import Note
from specs.limits import ISSUE_TITLE

# A task id as written: spec-kit's T001 (T002a inserted later, T1.2 numbered by
# phase), another prefix with two digits or a dash (P001, QG01, C-1), or Kiro's
# number (1, 1.2, 10a.1).
_ID = (
    r"(?:T\d+[a-z]?(?:\.\d+[a-z]?)*"
    r"|[A-Z][A-Z0-9]{0,5}-\d+[a-z]?(?:\.\d+)*"
    r"|[A-Z]{1,5}\d{2,}[a-z]?(?:\.\d+)*"
    r"|\d+(?:[a-z](?=\.))?(?:\.\d+(?:[a-z](?![A-Za-z]))?)*)"
)
# What may stand between an id and its title.
_SEPARATOR = r"[\s:.)\-\u2013\u2014\u00b7|]"
_BARE_ID = re.compile(rf"^(?:Task\s+)?(?P<id>{_ID})(?P<dot>\.)?(?P<star>\\?\*)?(?={_SEPARATOR}|$)")
_WRAPPED_ID = re.compile(
    rf"^(?P<wrap>\*\*|__|`)\s*(?:Task\s+)?(?P<id>{_ID})(?P<star>\\?\*)?\s*[:.]?\s*(?P=wrap)"
)
_LEAD = re.compile(rf"^{_SEPARATOR}*")
_MARKERS_FIRST = re.compile(r"^(?:`?\[[^\]\[]*\]`?[ \t]*)+")
_CHECKBOX = re.compile(
    r"^(?P<indent>[ \t]*)(?:[-*+]|\d+[.)])[ \t]+\\?\[(?P<state>[ xX\-~])\\?\](?P<rest>.*)$"
)
_OPTIONAL_MARK = re.compile(r"^\\?\*(?=\s|$)")
_HEADING = re.compile(r"^(?P<level>#{1,6})[ \t]+(?P<text>.*?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})")
_DONE_MARK = re.compile(r"\s*(?:\u2705|\u2714\ufe0f?|\[[xX]\])\s*")
_STATUS = re.compile(r"^\s*[-*]?\s*\**Status\**\s*:?\**\s*(?P<value>.*)$", re.I)
_STATUS_DONE = re.compile(r"\[[xX]\]|\u2705|(?<!not )\b(?:done|complete|completed)\b", re.I)


@dataclass
class Entry:
    """One task as written: a checkbox line with an id, or a heading with one."""

    line: int  # 1-based
    number: str  # the id as written: T001, QG01, 2.1
    title: str
    indent: int  # columns before the checkbox; -1 for a heading
    level: int  # the heading's level, or 0 for a checkbox line
    state: str  # " ", "x", "-" (started)
    optional: bool  # Kiro's `- [ ]*`
    headings: tuple[tuple[int, str], ...]  # the headings it is under: (level, text)
    details: list[tuple[int, str]] = field(default_factory=list)  # (line, text) below it
    # Its own checkboxes without an id (a heading task's steps): (line, ticked, text).
    steps: list[tuple[int, bool, str]] = field(default_factory=list)

    @property
    def is_heading(self) -> bool:
        return self.level > 0


@dataclass
class Unnumbered:
    """Checkbox lines without an id that belong to no task: told once per run of them."""

    first: int
    last: int
    count: int
    sample: str
    section: str


@dataclass
class Checklist:
    title: str  # the file's first `# ` heading
    title_line: int
    entries: list[Entry]
    groups: list[Entry]  # headings with an id that group tasks (`### 2. Parent`)
    unnumbered: list[Unnumbered]
    checkboxes: int  # checkbox lines of any kind
    heading_lines: list[tuple[int, int]]  # (line, level) of every heading
    blank: bool = False  # nothing but blank lines, comments or a front matter
    untitled: list[Entry] = field(default_factory=list)  # `- [ ] T001` and no title

    def under(self, heading: Entry, entry: Entry) -> bool:
        """Whether `entry` is written in the section that `heading` opens."""
        return _in_section(self.heading_lines, heading, entry.line)


def lines_of(text: str) -> list[str]:
    """The file's lines as git and GitHub number them: split at line feeds only (not at
    the other characters str.splitlines takes for line ends), a carriage return dropped."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def lines_with_ends(text: str) -> list[str]:
    """lines_of's lines, each with its line end, to edit the file and join it again."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def readable_lines(text: str) -> list[str]:
    """The file's lines with HTML comments, fenced code and a front matter blanked, so
    line numbers stay the file's and nothing shown as an example reads as a task."""
    return _scan(text)[0]


def unclosed_fence(text: str) -> int | None:
    """The index of the line that opens a code block never closed (it runs to the end
    of the file), or None."""
    return _scan(text)[1]


def _scan(text: str) -> tuple[list[str], int | None]:
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group().count("\n"), text, flags=re.S)
    lines = lines_of(text)
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            lines[: end + 1] = [""] * (end + 1)
    fence: str | None = None
    opened = None
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is not None:
            if match and _closes(match["fence"], fence):
                fence = None
            lines[index] = ""
        elif match:
            fence, opened = match["fence"], index
            lines[index] = ""
    return lines, opened if fence is not None else None


def _closes(fence: str, opened: str) -> bool:
    return fence[0] == opened[0] and len(fence) >= len(opened)


def read_checklist(text: str) -> Checklist:
    lines = readable_lines(text)
    title, title_line = "", 1
    headings: list[tuple[int, str]] = []
    heading_entries: list[Entry] = []
    entries: list[Entry] = []
    orphans: list[tuple[int, str, str]] = []  # (line, text, section)
    heading_lines: list[tuple[int, int]] = []  # (line, level) of every heading
    untitled: list[Entry] = []
    table_rows: list[tuple[int, str, tuple[tuple[int, str], ...]]] = []
    checkboxes = 0
    owner: Entry | None = None  # the task whose details follow
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if heading := _HEADING.match(line):
            level, text_ = len(heading["level"]), heading["text"].strip()
            if level == 1 and not title:
                title, title_line = text_, number
            headings = [h for h in headings if h[0] < level] + [(level, text_)]
            heading_lines.append((number, level))
            owner = _heading_entry(number, level, text_, tuple(headings[:-1]))
            if owner is not None:
                heading_entries.append(owner)
            continue
        if line.lstrip().startswith("|"):
            table_rows.append((number, line.strip(), tuple(headings)))
        box = _CHECKBOX.match(line)
        indent = len(line) - len(line.lstrip()) if not box else len(box["indent"].expandtabs(4))
        if box:
            checkboxes += 1
            entry = _box_entry(number, box, indent, tuple(headings))
            if entry is not None and not entry.title:
                untitled.append(entry)  # an id and nothing else: told, not a task
                owner = None
                continue
            if entry is not None:
                entries.append(entry)
                owner = entry
                continue
            if owner is not None and (owner.is_heading or indent > owner.indent):
                ticked = box["state"] in "xX"
                owner.steps.append((number, ticked, line.strip()))
                owner.details.append((number, _plain_box(box["state"], box["rest"])))
            else:
                owner = None
                orphans.append((number, line.strip(), headings[-1][1] if headings else ""))
            continue
        if owner is not None and (owner.is_heading or indent > owner.indent):
            owner.details.append((number, line.strip()))
        elif owner is not None and not owner.is_heading:
            owner = None
    tasks, groups = _settle_headings(heading_entries, entries, heading_lines, orphans)
    if not tasks and not untitled:
        tasks = _table_tasks(table_rows)  # a task list written as a table
    unnumbered = list(_runs(sorted(orphans)))
    blank = not any(line.strip() for line in lines)
    return Checklist(
        title, title_line, tasks, groups, unnumbered, checkboxes, heading_lines, blank, untitled
    )


def _table_tasks(rows: list[tuple[int, str, tuple[tuple[int, str], ...]]]) -> list[Entry]:
    """Tasks written as the rows of a table with a column of task ids (`| T001 | Title |
    Done |`), read only in a file with no checkbox or heading task (where a table of
    ids is a summary of them)."""
    tables: list[list[tuple[int, str, tuple[tuple[int, str], ...]]]] = []
    for row in rows:
        if tables and tables[-1][-1][0] == row[0] - 1:
            tables[-1].append(row)
        else:
            tables.append([row])
    entries: list[Entry] = []
    for table in tables:
        if len(table) < 3 or not all(_RULE.match(c) for c in _cells(table[1][1])):
            continue
        header = [c.strip("*_` ").lower() for c in _cells(table[0][1])]
        body = [(n, _cells(text), headings) for n, text, headings in table[2:]]
        id_column = next(
            (
                i
                for i in range(len(header))
                if all(_bare_id(cells[i]) for _, cells, _ in body if i < len(cells) and cells[i])
                and any(i < len(cells) and cells[i] for _, cells, _ in body)
            ),
            None,
        )
        if id_column is None:
            continue
        others = [i for i in range(len(header)) if i != id_column]
        title_column = next((i for i in others if header[i] in _TITLE_HEADERS), None)
        title_column = title_column if title_column is not None else (others or [None])[0]
        status = next((i for i in others if _STATUS_HEADER.search(header[i])), None)
        for number, cells, headings in body:
            task_number = _bare_id(cells[id_column]) if id_column < len(cells) else None
            title = (
                cells[title_column]
                if title_column is not None and title_column < len(cells)
                else ""
            )
            if task_number is None or not title:
                continue
            done = status is not None and status < len(cells) and _done_cell(cells[status])
            entry = Entry(number, task_number, title, 0, 0, "x" if done else " ", False, headings)
            entries.append(entry)
    return entries


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def _cell(cells: list[str], column: int | None) -> str:
    return cells[column] if column is not None and column < len(cells) else ""


def _bare_id(cell: str) -> str | None:
    found = task_id(cell.strip())
    return found[0] if found is not None and not found[1] else None


def _done_cell(cell: str) -> bool:
    return bool(_STATUS_DONE.search(cell) or cell.strip().lower() in ("x", "yes", "\u2714"))


_RULE = re.compile(r"^:?-{3,}:?$")
_TITLE_HEADERS = {"task", "title", "description", "name", "what", "summary"}
_STATUS_HEADER = re.compile(r"status|done|state|complete", re.I)


def _box_entry(
    number: int, box: re.Match[str], indent: int, headings: tuple[tuple[int, str], ...]
) -> Entry | None:
    rest = box["rest"].strip()
    optional = bool(_OPTIONAL_MARK.match(rest))
    if optional:
        rest = _OPTIONAL_MARK.sub("", rest, count=1).lstrip()
    found = task_id(rest)
    if found is None:
        return None
    task_number, title, starred = found
    state = box["state"].replace("X", "x").replace("~", "-")
    return Entry(number, task_number, title, indent, 0, state, optional or starred, headings)


def task_id(text: str) -> tuple[str, str, bool] | None:
    """(the id, the title after it, whether it is starred optional) of a task's text,
    or None when it starts with no id."""
    match = _WRAPPED_ID.match(text) or _BARE_ID.match(text)
    if match is None:
        return _marked_first(text)
    rest = text[match.end() :]
    title = _LEAD.sub("", rest, count=1).strip() if rest[:1] != "*" else rest.strip()
    return match["id"], title, bool(match["star"])


def _marked_first(text: str) -> tuple[str, str, bool] | None:
    """`[P] [US1] T005 Title` and `[T005] Title`: markers before the id, or the id in
    brackets, read as `T005 [P] [US1] Title`."""
    markers = _MARKERS_FIRST.match(text)
    if markers is None:
        return None
    inside = markers.group(0).strip()
    if bracketed := re.fullmatch(rf"\[(?P<id>{_ID})\]", inside):
        rest = text[markers.end() :]
        return bracketed["id"], _LEAD.sub("", rest, count=1).strip(), False
    found = task_id(text[markers.end() :])
    if found is None or not found[1]:
        return None
    return found[0], f"{inside} {found[1]}", found[2]


def _heading_entry(
    number: int, level: int, text: str, headings: tuple[tuple[int, str], ...]
) -> Entry | None:
    """`### T003 - Title`, `## Task 2: Title`, `### 2. Parent`: a task or a group, once
    what is under it is known (_settle_headings)."""
    if level == 1:
        return None
    text = re.sub(r"^[\W_]*(?=\*\*|`|Task\b|T?\d)", "", text)  # a leading emoji
    found = task_id(text)
    if found is None or not found[1]:
        return None
    if not re.match(r"^(?:\*\*|__|`)?\s*(?:Task\s+\S|T\d|[A-Z]{1,5}-?\d|\d)", text):
        return None
    task_number, title, _ = found
    done = bool(_DONE_MARK.search(title))
    title = _DONE_MARK.sub(" ", title).strip(" *_")
    if re.match(r"^Phase\b", text, re.I):
        return None
    return Entry(number, task_number, title, -1, level, "x" if done else " ", False, headings)


def _settle_headings(
    headings: list[Entry],
    entries: list[Entry],
    heading_lines: list[tuple[int, int]],
    orphans: list[tuple[int, str, str]],
) -> tuple[list[Entry], list[Entry]]:
    """A heading with an id is a task when no task with an id is written under it;
    else it groups them (and its id-less checkboxes belong to no task). Its steps all
    ticked (or ✅, or `Status: Done`) make it done."""
    tasks: list[Entry] = []
    groups: list[Entry] = []
    numbered = {e.number for e in entries}
    for heading in headings:
        if heading.number in numbered:
            continue  # an overview of a task its checkbox line names
        if any(_in_section(heading_lines, heading, e.line) for e in entries):
            groups.append(heading)
            orphans.extend((line, text, heading.title) for line, _, text in heading.steps)
            continue
        if heading.steps and all(ticked for _, ticked, _ in heading.steps):
            heading.state = "x"
        for _, detail in heading.details:
            status = _STATUS.match(detail)
            if status and _STATUS_DONE.search(status["value"]):
                heading.state = "x"
        tasks.append(heading)
    return sorted([*tasks, *entries], key=lambda e: e.line), groups


def _in_section(heading_lines: list[tuple[int, int]], heading: Entry, line: int) -> bool:
    if line <= heading.line:
        return False
    end = next((n for n, lv in heading_lines if n > heading.line and lv <= heading.level), None)
    return end is None or line < end


def _plain_box(state: str, rest: str) -> str:
    return f"[{'x' if state in 'xX' else ' '}] {rest.strip()}"


def _runs(orphans: list[tuple[int, str, str]]) -> Iterator[Unnumbered]:
    """Id-less checkbox lines one after another in one section: one finding for them."""
    run: list[tuple[int, str, str]] = []
    for orphan in orphans:
        if run and orphan[2] != run[-1][2]:
            yield _run(run)
            run = []
        run.append(orphan)
    if run:
        yield _run(run)


def _run(run: list[tuple[int, str, str]]) -> Unnumbered:
    return Unnumbered(run[0][0], run[-1][0], len(run), run[0][1], run[0][2])


def task_id_of(number: str) -> str:
    """The spec's id of a task numbered as written: T001 stays T001, Kiro's 2.1 is TASK-2.1."""
    return number if number[0].isalpha() else f"TASK-{number}"


def tell_unread(checklist: Checklist, unmapped: list[str], example: str) -> None:
    """What of tasks.md is not a task, said once per cause: no task at all is an error
    (the file is there to list tasks); checkboxes without an id are told per run."""
    for entry in checklist.untitled:
        text = f"task {entry.number} has no title; write it after the id, as in {example}"
        unmapped.append(Note(text, "tasks.md", entry.line, "no-title", "error"))
    if not checklist.entries and not checklist.untitled:
        if checklist.blank:
            text = "tasks.md is empty: the spec is read without tasks until it lists some"
            unmapped.append(Note(text, "tasks.md", 1, "no-tasks"))
        elif checklist.unnumbered:
            first = checklist.unnumbered[0]
            text = (
                f"tasks.md has {checklist.checkboxes} checkbox(es) but no task: none starts "
                f"with a task id; write each task as {example}"
            )
            unmapped.append(Note(text, "tasks.md", first.first, "no-tasks", "error"))
        else:
            text = f"tasks.md lists no task; write each task as {example}"
            unmapped.append(Note(text, "tasks.md", 1, "no-tasks", "error"))
        return
    for run in checklist.unnumbered:
        if run.count == 1:
            text = f"tasks.md line {run.first}: no task id, so not a task: {run.sample}"
        else:
            under = f" under '{run.section}'" if run.section else ""
            text = (
                f"tasks.md lines {run.first}-{run.last}{under}: {run.count} checkboxes "
                f"without a task id are not tasks (the first: {run.sample})"
            )
        text = f"{text}; to make one a task, write it as {example}"
        unmapped.append(Note(text, "tasks.md", run.first))


def is_task_line(line: str) -> bool:
    """Whether a line is a checkbox task with an id, as read_checklist reads one."""
    box = _CHECKBOX.match(line)
    return box is not None and _box_entry(0, box, 0, ()) is not None


def fit_title(task_id: str, text: str) -> tuple[str, str | None]:
    """A task line as its issue's title, and the whole line when it does not fit one.

    A task written as one long line (spec-kit's are often a paragraph) is read as its
    author means it: the title is its opening, cut at a clause within what GitHub holds
    ("T001: …" in 256 characters), and the whole line opens its description."""
    text = " ".join(text.split())
    room = ISSUE_TITLE - len(f"{task_id}: ")
    if len(text) <= room:
        return text, None
    head = text[: room - 1]
    for marks in _CUTS:  # the end of a sentence, else of a clause, else of a word
        cut = max(head.rfind(mark) + (mark == ". ") for mark in marks)
        if cut >= room // 3:
            break
    else:
        cut = room - 1
    return head[:cut].rstrip(" ,;:.(\u2014-") + "\u2026", text


_CUTS = ((". ",), ("; ", " \u2014 ", " - ", ": ", ", ", " ("), (" ",))
