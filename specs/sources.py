"""Where specs live in a repository, in each format, and how one is loaded.

Three formats, each found by where its files are:

- `yaml`: a `*.yaml` or `*.yml` file is one spec; its path is the file's.
- `spec-kit`: a feature folder `specs/NNN-name/` (spec-kit's own numbering) with
  `spec.md`, `plan.md` and `tasks.md`; nothing else in the folder is a spec
  (spec-kit's `contracts/*.yaml` are API descriptions, not specs).
- `kiro`: a folder `.kiro/specs/<name>/` with `requirements.md`, `design.md`
  and `tasks.md`.

A spec-kit or Kiro spec is its folder: its path is the folder's, with a
trailing slash (`specs/001-photo-albums/`). The folder is what stays the same
while the feature grows (spec.md first, tasks.md later), a change to any of its
files is a change of that one spec, and only deleting every file it reads
deletes it. Findings still point at the Markdown file and line they are about.

The Markdown is read with the importers' mapping (specs/importers), turned into
the spec format, and validated by the same rules as a YAML file.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import PurePosixPath
from types import ModuleType

import yaml

from specs.importers import IMPORTERS, Imported, Note, spec_yaml
from specs.load import _as_text, _Refused, load_spec
from specs.model import Finding, Spec

FORMATS = ("yaml", "spec-kit", "kiro")
YAML_SUFFIXES = (".yaml", ".yml")
# The folder of a native spec, and the rest of a path inside it.
_FOLDER = {
    "spec-kit": r"specs/\d+-[^/]+/",
    "kiro": r"\.kiro/specs/[^/]+/",
}
_ROOTED = {
    fmt: re.compile(rf"^(?P<folder>{pattern})(?P<rest>.+)$") for fmt, pattern in _FOLDER.items()
}
_ANYWHERE = {
    fmt: re.compile(rf"^(?P<folder>(?:.*/)?{pattern})(?P<rest>.+)$")
    for fmt, pattern in _FOLDER.items()
}
# Requirements that the tool writes as user stories by design: no EARS warning for them.
_STORY_ID = re.compile(r"^(?:US\d+|REQ-\d+)$")
# Notes that say what the mapping does on purpose, not what it could not map.
_QUIET_NOTES = {"optional", "in-progress"}
# "already used on line 12": a line of the generated YAML, told as the Markdown's.
_LINE_MENTION = re.compile(r"on line (\d+)")


def files_read(fmt: str) -> tuple[str, ...]:
    """The files of a native spec's folder that are read, by name."""
    return tuple(_module(fmt).FILES)


def spec_path_of(
    path: str,
    formats: Collection[str] = FORMATS,
    specs_path: str | None = None,
    anywhere: bool = False,
) -> str | None:
    """The spec a file belongs to: itself (a YAML spec), its folder (spec-kit, Kiro),
    or None when it is no spec's.

    `specs_path`: where YAML specs live (None: anywhere). Native folders are at the
    repository's root (`specs/NNN-name/`, `.kiro/specs/<name>/`), or with `anywhere`
    at any depth (paths given on the command line)."""
    patterns = _ANYWHERE if anywhere else _ROOTED
    for fmt in ("kiro", "spec-kit"):
        if fmt not in formats:
            continue
        match = patterns[fmt].match(path)
        if match:
            return match["folder"] if match["rest"] in files_read(fmt) else None
    yaml_spec = "yaml" in formats and path.endswith(YAML_SUFFIXES)
    if yaml_spec and (specs_path is None or path.startswith(specs_path)):
        return path
    return None


def format_of(spec_path: str) -> str:
    """yaml, spec-kit or kiro, from a spec's path."""
    if spec_path.endswith("/"):
        for fmt in ("kiro", "spec-kit"):  # `.kiro/specs/2-x/` is Kiro's, though numbered
            if _ANYWHERE[fmt].match(spec_path + files_read(fmt)[0]):
                return fmt
    return "yaml"


def spec_files(spec_path: str) -> tuple[str, ...]:
    """The repository files a spec is read from."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return (spec_path,)
    return tuple(spec_path + name for name in files_read(fmt))


def tasks_file(spec_path: str) -> str:
    """The file whose tasks carry the done marks: the YAML file, or the folder's tasks.md."""
    return spec_path if format_of(spec_path) == "yaml" else spec_path + "tasks.md"


def group(
    paths: Iterable[str], formats: Collection[str] = FORMATS, anywhere: bool = False
) -> dict[str, list[str]]:
    """Files by the spec they belong to. A file that is no native spec's is a YAML
    spec of its own (whatever it is named); a file in a native folder that the
    format does not read belongs to nothing."""
    found: dict[str, list[str]] = {}
    patterns = _ANYWHERE if anywhere else _ROOTED
    native_formats = [fmt for fmt in formats if fmt != "yaml"]
    for path in sorted(paths):
        native = spec_path_of(path, native_formats, anywhere=anywhere)
        inside = any(patterns[fmt].match(path) for fmt in native_formats)
        if native is not None:
            found.setdefault(native, []).append(path)
        elif not inside:
            found.setdefault(path, []).append(path)
    return found


def load_source(
    spec_path: str,
    files: Mapping[str, str | bytes],
    known_agents: Collection[str] | None = None,
) -> tuple[Spec | None, list[Finding]]:
    """Load one spec from its files (repository path → text; those that exist)."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return load_spec(files[spec_path], spec_path, known_agents)
    return load_native(fmt, spec_path, files, known_agents)


def load_native(
    fmt: str,
    folder: str,
    files: Mapping[str, str | bytes],
    known_agents: Collection[str] | None = None,
) -> tuple[Spec | None, list[Finding]]:
    """A spec-kit or Kiro folder as a spec: the importer's mapping, validated by the
    spec format's rules, each finding at the Markdown file and line it is about."""
    texts: dict[str, str] = {}
    findings: list[Finding] = []
    for path, raw in sorted(files.items()):
        try:
            texts[path.removeprefix(folder)] = _as_text(raw)
        except _Refused as refused:
            findings.append(
                Finding(path, refused.line, refused.column, "error", refused.code, refused.message)
            )
    if findings:
        return None, findings
    imported = _import(fmt, texts, PurePosixPath(folder).name)
    main = folder + next((n for n in ("tasks.md", *files_read(fmt)) if n in texts), "tasks.md")
    text = spec_yaml(imported, f"{fmt} {folder}")
    spec, found = load_spec(text, main, known_agents)
    places = _places(text, imported, folder, main)
    for finding in found:
        where = places(finding.line)
        if finding.code == "not-ears" and _STORY_ID.match(where[2] or ""):
            continue  # a user story, as the tool writes it
        message = _LINE_MENTION.sub(
            lambda m, path=where[0]: _line_in(places, path, int(m[1])), finding.message
        )
        findings.append(
            dataclasses.replace(finding, path=where[0], line=where[1], column=1, message=message)
        )
    for note in imported.unmapped:
        if getattr(note, "kind", None) not in _QUIET_NOTES:
            findings.append(_note_finding(note, folder, main))
    findings = sorted(dict.fromkeys(findings), key=lambda f: (f.path, f.line, f.column))
    if spec is None or any(f.is_error for f in findings):
        return None, findings
    return dataclasses.replace(spec, path=folder), findings


def main_file(spec_path: str, present: Collection[str]) -> str:
    """Where a finding about the whole spec goes: the YAML file, or the folder's
    tasks.md (else its first file present)."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return spec_path
    names = ("tasks.md", *files_read(fmt))
    return spec_path + next((n for n in names if spec_path + n in present), "tasks.md")


def _line_in(places, path: str, yaml_line: int) -> str:  # type: ignore[no-untyped-def]
    """A line of the generated YAML that a message names, as the Markdown line."""
    file, line, _ = places(yaml_line)
    return f"on line {line}" if file == path else f"in {file} line {line}"


def _import(fmt: str, texts: dict[str, str], name: str) -> Imported:
    module_name, function = IMPORTERS[fmt]
    module = importlib.import_module(module_name)
    return getattr(module, function)(texts, name)


def _module(fmt: str) -> ModuleType:
    return importlib.import_module(IMPORTERS[fmt][0])


def _note_finding(note: str, folder: str, main: str) -> Finding:
    if isinstance(note, Note) and note.file:
        path, line = folder + note.file, note.line or 1
    else:
        path, line = main, 1
    kind = note.kind if isinstance(note, Note) else "not-mapped"
    return Finding(path, line, 1, "warning", kind, f"not mapped: {note}")


def _places(text: str, imported: Imported, folder: str, main: str):  # type: ignore[no-untyped-def]
    """Line of the generated YAML → (Markdown file, line, requirement id or None)."""
    spans: list[tuple[int, int, tuple[str, int], str | None]] = []
    where = imported.where
    try:
        top = yaml.compose(text)
    except yaml.YAMLError:  # pragma: no cover - the importers write valid YAML
        top = None
    entries = {k.value: v for k, v in top.value} if isinstance(top, yaml.MappingNode) else {}
    for key, kind in (("tasks", "task"), ("requirements", "requirement")):
        sequence = entries.get(key)
        if not isinstance(sequence, yaml.SequenceNode):
            continue
        for index, item in enumerate(sequence.value):
            place = where.get(f"{kind}#{index}")
            if place is None:
                continue
            item_id = _value(item, "id") if kind == "requirement" else None
            spans.append((item.start_mark.line, item.end_mark.line, place, item_id))
            criteria = _child(item, "acceptance")
            for criterion in criteria.value if isinstance(criteria, yaml.SequenceNode) else []:
                at = where.get(f"criterion:{_value(criterion, 'id')}")
                if at is not None:
                    spans.append((criterion.start_mark.line, criterion.end_mark.line, at, None))

    def place_of(line: int) -> tuple[str, int, str | None]:
        zero = line - 1
        inside = [s for s in spans if s[0] <= zero and (zero < s[1] or zero == s[0])]
        if not inside:
            return main, 1, None
        _start, _end, (file, number), item_id = max(inside, key=lambda s: s[0])
        return folder + file, number, item_id

    return place_of


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if getattr(k, "value", None) == key), None)


def _value(node: yaml.Node, key: str) -> str | None:
    child = _child(node, key)
    return child.value if isinstance(child, yaml.ScalarNode) else None
