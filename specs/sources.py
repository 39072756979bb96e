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

from specs.importers import IMPORTERS, Imported, Note
from specs.load import _as_text, _Refused, load_spec
from specs.model import Finding, Spec
from specs.rules import check_spec

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
    spec format's rules, each finding at the Markdown file and line it is about.

    The mapping goes to the rules as the nodes YAML would have given them, each marked
    with the Markdown file and line it was read from: no YAML is written or parsed
    (that cost 14-20x the reading of a YAML spec of the same size)."""
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
    node = spec_node(imported, folder, main)
    spec, found = check_spec(node, main, imported.spec["id"], known_agents)
    stories = _story_places(imported, folder)
    for finding in found:
        if finding.code == "not-ears" and (finding.path, finding.line) in stories:
            continue  # a user story, as the tool writes it
        findings.append(finding)
    for note in imported.unmapped:
        if getattr(note, "kind", None) not in _QUIET_NOTES:
            findings.append(_note_finding(note, folder, main))
    findings = sorted(dict.fromkeys(findings), key=lambda f: (f.path, f.line, f.column))
    if spec is None or any(f.is_error for f in findings):
        return None, findings
    return dataclasses.replace(spec, path=folder), findings


def spec_node(imported: Imported, folder: str, main: str) -> yaml.MappingNode:
    """The spec mapping as YAML nodes, marked with where each part was read."""
    where = imported.where
    top = Place(main, 1)

    def place(key: str | None) -> Place:
        found = where.get(key) if key else None
        return Place(folder + found[0], found[1]) if found else top

    entries: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in imported.spec.items():
        if key in ("tasks", "requirements"):
            kind = key[:-1]
            items = []
            for index, item in enumerate(value):
                at = place(f"{kind}#{index}")
                items.append(
                    yaml.MappingNode(
                        _MAP,
                        [(_node(k, at), _item_value(k, v, at, place)) for k, v in item.items()],
                        at,
                        at,
                    )
                )
            entries.append((_node(key, top), yaml.SequenceNode(_SEQ, items, top, top)))
        else:
            at = place(key)
            entries.append((_node(key, at), _node(value, at)))
    return yaml.MappingNode(_MAP, entries, top, top)


class Place(yaml.Mark):
    """A node's mark in a Markdown file: the rules report a finding at its path."""

    def __init__(self, path: str, line: int) -> None:
        super().__init__(path, 0, line - 1, 0, None, None)
        self.path = path


_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_STR, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool"


def _item_value(key: str, value: object, at: Place, place) -> yaml.Node:  # type: ignore[no-untyped-def]
    if key != "acceptance" or not isinstance(value, list):
        return _node(value, at)
    criteria = [
        _node(criterion, place(f"criterion:{criterion.get('id')}"))
        for criterion in value
        if isinstance(criterion, dict)
    ]
    return yaml.SequenceNode(_SEQ, criteria, at, at)


def _node(value: object, at: Place) -> yaml.Node:
    """A value as the YAML round trip would give it back (multi-line text is written as
    a literal block: its end trimmed, one line break kept)."""
    if isinstance(value, dict):
        pairs = [(_node(k, at), _node(v, at)) for k, v in value.items()]
        return yaml.MappingNode(_MAP, pairs, at, at)
    if isinstance(value, list):
        return yaml.SequenceNode(_SEQ, [_node(v, at) for v in value], at, at)
    if isinstance(value, bool):
        return yaml.ScalarNode(_BOOL, "true" if value else "false", at, at)
    text = str(value)
    if "\n" in text:
        text = text.rstrip() + "\n"
    return yaml.ScalarNode(_STR, text, at, at, style="'")


def _story_places(imported: Imported, folder: str) -> set[tuple[str, int]]:
    """Where the requirements the tools write as user stories are (no EARS warning)."""
    places = set()
    for index, requirement in enumerate(imported.spec.get("requirements", [])):
        found = imported.where.get(f"requirement#{index}")
        if found and _STORY_ID.match(str(requirement.get("id", ""))):
            places.add((folder + found[0], found[1]))
    return places


def main_file(spec_path: str, present: Collection[str]) -> str:
    """Where a finding about the whole spec goes: the YAML file, or the folder's
    tasks.md (else its first file present)."""
    fmt = format_of(spec_path)
    if fmt == "yaml":
        return spec_path
    names = ("tasks.md", *files_read(fmt))
    return spec_path + next((n for n in names if spec_path + n in present), "tasks.md")


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
    severity = note.severity if isinstance(note, Note) else "warning"
    message = f"not mapped: {note}" if kind == "not-mapped" else str(note)
    return Finding(path, line, 1, severity, kind, message)
