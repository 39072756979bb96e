"""`specbridge validate`: findings for people (text), tools (json) and GitHub Actions."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from specs.model import Finding
from specs.validate import validate_files

SPEC_SUFFIXES = (".yaml", ".yml")


def validate_paths(paths: Sequence[str], fmt: str, out: TextIO) -> int:
    """Exit status: 0 without errors (warnings allowed), 1 with errors, 2 on usage problems."""
    files: dict[str, bytes] = {}
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for found in sorted(
                p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file()
            ):
                files[str(found)] = found.read_bytes()
        elif path.is_file():
            files[str(path)] = path.read_bytes()
        else:
            print(f"specbridge validate: {name} is neither a file nor a directory", file=sys.stderr)
            return 2
    findings = [f for _, found in validate_files(files).values() for f in found]
    FORMATS[fmt](findings, len(files), out)
    return 1 if any(f.is_error for f in findings) else 0


def _text(findings: list[Finding], file_count: int, out: TextIO) -> None:
    for f in findings:
        out.write(f"{f.path}:{f.line}:{f.column}: {f.severity}[{f.code}]: {f.message}\n")
    errors = sum(f.is_error for f in findings)
    warnings = len(findings) - errors
    out.write(
        f"{_count(file_count, 'file')}, {_count(errors, 'error')}, {_count(warnings, 'warning')}\n"
    )


def _json(findings: list[Finding], _file_count: int, out: TextIO) -> None:
    json.dump([asdict(f) for f in findings], out, indent=2)
    out.write("\n")


def _github(findings: list[Finding], _file_count: int, out: TextIO) -> None:
    for f in findings:
        properties = ",".join(
            f"{key}={_escape_property(str(value))}"
            for key, value in (
                ("file", f.path),
                ("line", f.line),
                ("col", f.column),
                ("title", f.code),
            )
        )
        out.write(f"::{f.severity} {properties}::{_escape_data(f.message)}\n")


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


FORMATS = {"text": _text, "json": _json, "github": _github}
