"""Load one spec file: YAML text → Spec, with every finding positioned.

Loading is in two passes over libyaml's output. The first reads the event
stream (iterative, in C) and refuses what a spec never needs and an attacker
would use: aliases (the "billion laughs"), non-standard tags, several
documents, deep nesting. Only then is the single document composed into
nodes, which keep their line and column for every finding.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PurePosixPath

import yaml

from specs.model import Finding, Spec
from specs.rules import check_spec

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 20
STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
}


class _Refused(Exception):
    def __init__(self, code: str, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column


def load_spec(
    text: str | bytes, path: str, known_agents: Collection[str] | None = None
) -> tuple[Spec | None, list[Finding]]:
    """Parse and validate one file; the Spec is None exactly when there is an error."""
    try:
        node = _compose(text)
    except _Refused as refused:
        return None, [
            Finding(path, refused.line, refused.column, "error", refused.code, refused.message)
        ]
    spec, found = check_spec(node, path, PurePosixPath(path).stem, known_agents)
    findings = sorted(dict.fromkeys(found), key=lambda f: (f.line, f.column))
    if any(f.is_error for f in findings):
        return None, findings
    return spec, findings


def compose(text: str | bytes, path: str) -> tuple[yaml.Node | None, list[Finding]]:
    """One YAML document as nodes (for positions), refused as a spec would be when it
    is hostile or broken: the node, or None and the finding that says why."""
    try:
        return _compose(text), []
    except _Refused as refused:
        finding = Finding(
            path, refused.line, refused.column, "error", refused.code, refused.message
        )
        return None, [finding]


def _compose(text: str | bytes) -> yaml.Node:
    source = _as_text(text)
    _check_events(source)
    try:
        node = yaml.compose(source, Loader=_Loader)
    except yaml.YAMLError as error:  # pragma: no cover - the event pass sees these first
        raise _syntax(error, source) from None
    if node is None:
        raise _Refused("empty", "the file is empty; a spec needs at least a title and a phase")
    return node


def _as_text(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise _Refused(
            "too-large", f"the file is {len(raw):,} bytes; specs are limited to {MAX_BYTES:,}"
        )
    if b"\x00" in raw:
        raise _Refused("not-text", "the file contains NUL bytes: it is binary, not text")
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _Refused(
            "not-text", f"the file is not UTF-8 text (byte {error.start} is invalid)"
        ) from None
    if any(ch in decoded for ch in "\ud800\udfff") or "\ufffe" in decoded:
        raise _Refused("not-text", "the file contains characters that are not text")
    return decoded


def _check_events(source: str) -> None:
    depth = documents = 0
    try:
        for event in yaml.parse(source, Loader=_Loader):
            mark = event.start_mark
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Refused(
                        "multiple-documents",
                        "the file holds several YAML documents; a spec is exactly one",
                        mark.line + 1,
                        mark.column + 1,
                    )
            elif isinstance(event, yaml.AliasEvent):
                raise _Refused(
                    "yaml-alias",
                    f"YAML aliases (*{event.anchor}) are not allowed in spec files; "
                    "write the value out",
                    mark.line + 1,
                    mark.column + 1,
                )
            elif isinstance(event, yaml.NodeEvent):
                _check_tag(event)
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise _Refused(
                            "too-deep",
                            f"the file nests deeper than {MAX_DEPTH} levels",
                            mark.line + 1,
                            mark.column + 1,
                        )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as error:
        raise _syntax(error, source) from None


def _check_tag(event: yaml.NodeEvent) -> None:
    tag = getattr(event, "tag", None)
    if tag is None or tag == "!":
        return
    if tag.startswith("!!"):
        tag = "tag:yaml.org,2002:" + tag[2:]
    if tag not in STANDARD_TAGS:
        mark = event.start_mark
        raise _Refused(
            "unsafe-tag",
            f"the YAML tag {getattr(event, 'tag', '')} is not allowed; specs use plain YAML only",
            mark.line + 1,
            mark.column + 1,
        )


def _syntax(error: yaml.YAMLError, source: str) -> _Refused:
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None) or ""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    message = f"YAML syntax error: {problem}"
    if context.startswith("while scanning a quoted scalar") and error.context_mark:
        # libyaml notices a missing closing quote only at the end of the file.
        mark = error.context_mark
        message = f"YAML syntax error: this quote is never closed ({problem})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = source.splitlines()
    if "\t" in problem or "tab" in problem or (line <= len(lines) and "\t" in lines[line - 1]):
        message += "; YAML does not allow tabs for indentation: indent with spaces"
    return _Refused("yaml-syntax", message, line, column)
