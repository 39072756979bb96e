"""Validation of several files of one repository: each spec, then across specs."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from specs.model import Finding, Spec
from specs.sources import FORMATS, format_of, group, load_source, main_file


def validate_files(
    files: Mapping[str, str | bytes],
    known_agents: Collection[str] | None = None,
    formats: Collection[str] = FORMATS,
    anywhere: bool = False,
) -> dict[str, tuple[Spec | None, list[Finding]]]:
    """Load every spec the files make up, by its path (a YAML file, or a spec-kit or
    Kiro folder: specs/sources.py); a spec id used by two specs is an error in both."""
    results = {
        spec_path: load_source(spec_path, {p: files[p] for p in paths}, known_agents)
        for spec_path, paths in group(files, formats, anywhere).items()
    }
    by_id: dict[str, list[str]] = {}
    for path, (spec, _) in results.items():
        if spec is not None:
            by_id.setdefault(spec.id, []).append(path)
    for spec_id, paths in by_id.items():
        if len(paths) < 2:
            continue
        for path in paths:
            spec, findings = results[path]
            assert spec is not None
            others = ", ".join(p for p in paths if p != path)
            if format_of(path) == "yaml":
                where, (line, column) = path, _id_position(files[path])
            else:
                where, (line, column) = main_file(path, files), (1, 1)
            finding = Finding(
                where,
                line,
                column,
                "error",
                "duplicate-spec-id",
                f"spec id '{spec_id}' is also used by {others}",
            )
            results[path] = (None, sorted([*findings, finding], key=lambda f: (f.line, f.column)))
    return results


def _id_position(text: str | bytes) -> tuple[int, int]:
    """Where `id:` is written at the top level, or 1:1 when the id comes from the file name."""
    lines = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    for number, line in enumerate(lines.splitlines(), start=1):
        if line.startswith("id:"):
            return number, 1
    return 1, 1
