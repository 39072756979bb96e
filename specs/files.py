"""Spec files on disk: what a path given on the command line names."""

from __future__ import annotations

from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml")


def read_spec_files(path: Path) -> dict[str, bytes]:
    """The file itself, or every spec file below a folder (by name, in order)."""
    if not path.is_dir():
        return {path.as_posix(): path.read_bytes()}
    found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
    return {p.as_posix(): p.read_bytes() for p in found}
