"""Spec files on disk: what a path given on the command line names."""

from __future__ import annotations

from pathlib import Path

from specs.sources import group, spec_files, spec_path_of

SPEC_SUFFIXES = (".yaml", ".yml")
NATIVE_NAMES = ("spec.md", "plan.md", "tasks.md", "requirements.md", "design.md")


def read_spec_files(path: Path) -> dict[str, bytes]:
    """The file itself, or every spec file below a folder (by name, in order): YAML files,
    and the files of spec-kit (`specs/NNN-name/`) and Kiro (`.kiro/specs/<name>/`)
    folders. A file of such a folder brings the folder's other files with it."""
    if not path.is_dir():
        folder = spec_path_of(path.as_posix(), anywhere=True)
        if folder is None or not folder.endswith("/"):
            return {path.as_posix(): path.read_bytes()}
        present = [Path(name) for name in spec_files(folder) if Path(name).is_file()]
        return {name.as_posix(): name.read_bytes() for name in present}
    found = sorted(
        p
        for p in path.rglob("*")
        if (p.suffix in SPEC_SUFFIXES or p.name in NATIVE_NAMES)
        and not _github_but_settings(p.relative_to(path))
        and p.is_file()
    )
    files = {p.as_posix(): p for p in found}
    grouped = group(files, anywhere=True)
    return {
        name: files[name].read_bytes()
        for spec, names in grouped.items()
        if spec.endswith(("/", *SPEC_SUFFIXES))  # a stray spec.md is nobody's
        for name in names
    }


def _github_but_settings(relative: Path) -> bool:
    """A file of a `.github/` folder other than specbridge's settings (workflows,
    issue templates): no spec, and not read when a folder holding it is given."""
    parts = relative.parts
    if ".github" not in parts[:-1]:
        return False
    return not (parts[-2] == ".github" and relative.stem == "specbridge")
