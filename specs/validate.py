"""Validation of several files of one repository: each file, then across files."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from specs.load import load_spec
from specs.model import Finding, Spec


def validate_files(
    files: Mapping[str, str | bytes], known_agents: Collection[str] | None = None
) -> dict[str, tuple[Spec | None, list[Finding]]]:
    """Load every file; a spec id used by two files is an error in both."""
    results = {path: load_spec(text, path, known_agents) for path, text in sorted(files.items())}
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
            line, column = _id_position(files[path])
            finding = Finding(
                path,
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
