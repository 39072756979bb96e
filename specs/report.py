"""`specbridge validate`: findings for people (text), tools (json), GitHub Actions
(github) and code scanning (sarif)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path, PurePath
from typing import TextIO

from specs.files import SPEC_SUFFIXES, read_spec_files
from specs.model import Finding
from specs.validate import validate_files

# GitHub shows 10 error, 10 warning and 10 notice annotations per step.
ANNOTATIONS_PER_STEP = 10


# A check of files that are not specs (the settings file, in bot/): its findings, or
# None for a file it does not know.
OtherFiles = Callable[[str, bytes], "list[Finding] | None"]


def validate_paths(
    paths: Sequence[str], fmt: str, out: TextIO, other_files: OtherFiles | None = None
) -> int:
    """Exit status: 0 without errors (warnings allowed), 1 with errors or no spec file at all,
    2 for a path that does not exist. `other_files` claims the files that are not specs."""
    files: dict[str, bytes] = {}
    for name in paths:
        path = Path(name)
        if not (path.is_dir() or path.is_file()):
            print(f"specbridge validate: {name} is neither a file nor a directory", file=sys.stderr)
            return 2
        files |= read_spec_files(path)
    findings: list[Finding] = []
    others = 0
    for name in list(files) if other_files else []:
        found = other_files(name, files[name])  # type: ignore[misc]
        if found is not None:
            findings += found
            others += 1
            del files[name]
    if not files and not others:
        suffixes = ", ".join(f"*{suffix}" for suffix in SPEC_SUFFIXES)
        print(
            f"specbridge validate: no spec files ({suffixes}) and no spec-kit or Kiro folder "
            f"in {', '.join(paths)}",
            file=sys.stderr,
        )
        return 1
    findings += [f for _, found in validate_files(files, anywhere=True).values() for f in found]
    FORMATS[fmt](findings, len(files) + others, out)
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
    """Annotations, as many as GitHub shows for one step; the rest as log lines and a notice."""
    shown: dict[str, int] = {}
    hidden: list[Finding] = []
    for f in findings:
        if shown.get(f.severity, 0) == ANNOTATIONS_PER_STEP:
            hidden.append(f)
            continue
        shown[f.severity] = shown.get(f.severity, 0) + 1
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
    if hidden:
        _text(hidden, _file_count, out)
        out.write(
            f"::notice title=specbridge::{_count(len(hidden), 'more finding')} not shown as "
            f"annotations: GitHub shows {ANNOTATIONS_PER_STEP} errors and "
            f"{ANNOTATIONS_PER_STEP} warnings per step; they are in this step's log\n"
        )


def _sarif(findings: list[Finding], _file_count: int, out: TextIO) -> None:
    """SARIF 2.1.0, as GitHub code scanning uploads it."""
    codes = sorted({f.code for f in findings})
    rules = [{"id": code, "shortDescription": {"text": code}} for code in codes]
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": f.severity,
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path)},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in findings
    ]
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "specbridge",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    json.dump(log, out, indent=2)
    out.write("\n")


def _uri(path: str) -> str:
    """Relative paths stay relative (code scanning resolves them from the checkout)."""
    posix = PurePath(path)
    return posix.as_uri() if posix.is_absolute() else posix.as_posix()


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


FORMATS = {"text": _text, "json": _json, "github": _github, "sarif": _sarif}
