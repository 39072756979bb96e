"""Specs from other planning tools: their Markdown in, a specbridge spec out.

Each importer is pure: it takes the text of the tool's files by name and
returns the spec as a mapping ready to write as YAML, with a note for each
thing it read but could not map. The mapping rules are in docs/specs/spec-kit-and-kiro.md.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# tool → (its importer module, which names the FILES it reads, and the function)
IMPORTERS = {
    "spec-kit": ("specs.importers.spec_kit", "import_spec_kit"),
    "kiro": ("specs.importers.kiro", "import_kiro"),
}


class ImportProblem(ValueError):
    """The files cannot be imported; the message says why, in one line."""


class Note(str):
    """Something read but not mapped: its text, and where it was read when known
    (a file of the tool's and a 1-based line), for annotations on that line."""

    file: str | None
    line: int | None
    kind: str
    severity: str  # "warning", or "error" for what makes the files no spec (no task at all)

    def __new__(
        cls,
        text: str,
        file: str | None = None,
        line: int | None = None,
        kind: str = "not-mapped",
        severity: str = "warning",
    ) -> Note:
        note = super().__new__(cls, text)
        note.file, note.line, note.kind, note.severity = file, line, kind, severity
        return note


@dataclass
class Imported:
    spec: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)
    # Where each item was read: "task:T005", "requirement:US1", "criterion:US1-AC1"
    # → (the tool's file, 1-based line).
    where: dict[str, tuple[str, int]] = field(default_factory=dict)


def import_feature(tool: str, path: Path) -> tuple[Imported, str]:
    """Import the feature whose directory is `path` (or holds the file `path`), and
    the spec's YAML text."""
    module_name, function = IMPORTERS[tool]
    module = importlib.import_module(module_name)
    directory = path.parent if path.is_file() else path
    try:
        files = {
            name: (directory / name).read_text(encoding="utf-8")
            for name in module.FILES
            if (directory / name).is_file()
        }
    except UnicodeDecodeError as error:
        raise ImportProblem(f"a file in {directory} is not UTF-8 ({error})") from None
    if not files:
        raise ImportProblem(f"{directory} has none of {', '.join(module.FILES)}")
    imported = getattr(module, function)(files, directory.resolve().name)
    return imported, spec_yaml(imported, f"{tool} {directory}")


def build_spec(
    spec_id: str,
    title: str,
    *,
    context: str = "",
    requirements: list[dict[str, Any]] | None = None,
    design: str = "",
    tasks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The spec mapping in the format's key order, its phase the furthest the files reach."""
    phase = (
        "tasks" if tasks else "design" if design else "requirements" if requirements else "explore"
    )
    spec: dict[str, Any] = {"id": spec_id, "title": title or spec_id, "phase": phase}
    for key, value in (
        ("context", context.strip()),
        ("requirements", requirements),
        ("design", design.strip()),
        ("tasks", tasks),
    ):
        if value:
            spec[key] = value
    return spec


def slug(name: str) -> str:
    """A spec id from a directory name: lowercase letters, digits and '-'."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return cleaned or "imported"


def spec_yaml(imported: Imported, origin: str) -> str:
    """The spec as YAML, multi-line text as literal blocks; strings YAML 1.1 would misread
    come out quoted (the dumper resolves as the loader does)."""
    header = f"# Imported from {origin} by `specbridge import`; edit it as any spec.\n"
    return header + yaml.dump(
        imported.spec, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=_NO_WRAP
    )


def drop_unknown_references(
    tasks: list[dict[str, Any]],
    unmapped: list[str],
    where: dict[str, tuple[str, int]] | None = None,
) -> None:
    """Dependencies on tasks the import does not have are removed, and said so."""
    ids = {task["id"] for task in tasks}
    for task in tasks:
        kept = []
        for target in task.get("depends_on", []):
            if target in ids and target != task["id"] and target not in kept:
                kept.append(target)
            elif target not in ids:
                file, line = (where or {}).get(f"task:{task['id']}", (None, None))
                unmapped.append(
                    Note(f"task {task['id']} depends on {target}, which is not a task", file, line)
                )
        if kept:
            task["depends_on"] = kept
        else:
            task.pop("depends_on", None)


_NO_WRAP = 1 << 20  # long lines stay whole: titles and EARS text read better


class _SpecDumper(yaml.SafeDumper):
    pass


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        value = value.rstrip() + "\n"
    if any(ch in value for ch in _BREAKS_YAML_FOLDS):
        # YAML 1.1 reads these as line breaks, and folds them outside double quotes.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_str(value)


_BREAKS_YAML_FOLDS = "\r\x85\u2028\u2029"


_SpecDumper.add_representer(str, _represent_text)
