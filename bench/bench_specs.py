"""How fast spec files are refused or validated.

    python -m bench.bench_specs

Prints the time to refuse an alias bomb and a 50 MiB file, the time to
validate 1,000 spec files of 50 tasks each, per file and as a ratio to a
bare yaml.safe_load of the same files, and the time to read a spec-kit and a
Kiro folder of 1,000 tasks as a ratio to the YAML spec of the same tasks (the
one `specbridge import` writes from them; target: within 2x).
"""

from __future__ import annotations

import time

import yaml

from specs.importers import spec_yaml
from specs.load import load_spec
from specs.sources import _import, load_source
from specs.validate import validate_files

BILLION_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def spec_text(n: int, tasks: int = 50) -> str:
    lines = [f"id: spec-{n}", f"title: Spec {n}", "phase: tasks", "requirements:"]
    for r in range(5):
        lines += [
            f"  - id: REQ-{r}",
            f"    text: WHEN event {r} happens THE SYSTEM SHALL react",
            "    acceptance:",
            f"      - id: AC-{r}",
            "        text: it reacted",
        ]
    lines.append("tasks:")
    for t in range(tasks):
        depends = f"[TSK-{t - 1}]" if t else "[]"
        lines += [
            f"  - id: TSK-{t}",
            f"    title: Task {t}",
            f"    description: Do part {t}.",
            "    priority: medium",
            f"    requirements: [REQ-{t % 5}]",
            f"    depends_on: {depends}",
        ]
    return "\n".join(lines) + "\n"


def timed(action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_of(action, rounds: int = 5) -> float:  # type: ignore[no-untyped-def]
    return min(timed(action) for _ in range(rounds))


def spec_kit_folder(tasks: int) -> dict[str, str]:
    """A spec-kit feature of `tasks` tasks: five stories, phases as the template has them."""
    spec = ["# Feature Specification: Exports", "", "## User Scenarios & Testing", ""]
    for story in range(1, 6):
        spec += [
            f"### User Story {story} - Export kind {story} (Priority: P{min(story, 3)})",
            "",
            f"A user exports data of kind {story}.",
            "",
            "**Acceptance Scenarios**:",
            "",
            f"1. **Given** data of kind {story}, **When** exported, **Then** a file is written",
            "",
        ]
    spec += ["## Requirements", ""] + [f"- **FR-{n:03d}**: System MUST do {n}" for n in range(20)]
    lines = ["# Tasks: Exports", "", "## Phase 1: Setup", ""]
    per_phase = tasks // 6
    for n in range(1, tasks + 1):
        if n % per_phase == 1 and n > 1:
            story = (n // per_phase) % 5 + 1
            lines += ["", f"## Phase {n // per_phase + 1}: User Story {story} - Kind {story}", ""]
        story = (n // per_phase) % 5 + 1
        marker = "[P] " if n % 3 == 0 else ""
        lines.append(f"- [ ] T{n:04d} {marker}[US{story}] Implement part {n} in src/part_{n}.py")
    return {
        "specs/001-exports/spec.md": "\n".join(spec) + "\n",
        "specs/001-exports/plan.md": "# Implementation Plan: Exports\n\nA plan.\n",
        "specs/001-exports/tasks.md": "\n".join(lines) + "\n",
    }


def kiro_folder(tasks: int) -> dict[str, str]:
    """A Kiro spec of `tasks` tasks: parents of four sub-tasks, each naming criteria."""
    requirements = ["# Requirements Document", "", "## Introduction", "", "Exports.", ""]
    for r in range(1, 11):
        requirements += [
            f"### Requirement {r}",
            "",
            f"**User Story:** As a user, I want export {r}, so that I keep my data.",
            "",
            "#### Acceptance Criteria",
            "",
            f"1. WHEN a user asks THEN the system SHALL write file {r}",
            f"2. WHEN it fails THEN the system SHALL say why {r}",
            "",
        ]
    lines = ["# Implementation Plan", ""]
    parent = 0
    for n in range(tasks):
        if n % 5 == 0:
            parent += 1
            lines.append(f"- [ ] {parent}. Build part {parent}")
        else:
            lines += [
                f"  - [ ] {parent}.{n % 5} Write piece {n}",
                f"    - Put it in src/piece_{n}.py",
                f"    - _Requirements: {n % 10 + 1}.1, {n % 10 + 1}.2_",
            ]
    return {
        ".kiro/specs/exports/requirements.md": "\n".join(requirements) + "\n",
        ".kiro/specs/exports/design.md": "# Design\n\nA design.\n",
        ".kiro/specs/exports/tasks.md": "\n".join(lines) + "\n",
    }


def native_against_yaml(fmt: str, folder: str, files: dict[str, str]) -> None:
    """A folder read as a spec, against the YAML spec of the same tasks."""
    texts = {name.removeprefix(folder): text for name, text in files.items()}
    yaml_text = spec_yaml(_import(fmt, texts, folder.rstrip("/").rsplit("/", 1)[-1]), "bench")
    native_spec, _ = load_source(folder, files)
    yaml_spec, _ = load_spec(yaml_text, "specs/exports.yaml")
    assert native_spec is not None and yaml_spec is not None
    assert native_spec.tasks == yaml_spec.tasks  # the same spec, read two ways
    native = best_of(lambda: load_source(folder, files))
    as_yaml = best_of(lambda: load_spec(yaml_text, "specs/exports.yaml"))
    verdict = "ok: within 2x" if native <= 2 * as_yaml else "SLOW: past 2x"
    print(
        f"{fmt} folder of {len(native_spec.tasks):,} tasks: {native * 1000:.0f} ms, the YAML "
        f"spec of the same tasks {as_yaml * 1000:.0f} ms: {native / as_yaml:.2f}x — {verdict}"
    )


def main() -> None:
    for name, text in [("alias bomb", BILLION_LAUGHS), ("50 MiB file", b"a" * (50 * 1024 * 1024))]:
        seconds = timed(lambda text=text: load_spec(text, "specs/hostile.yaml"))
        code = load_spec(text, "specs/hostile.yaml")[1][0].code
        verdict = "ok: well under a second" if seconds < 0.1 else "SLOW"
        print(f"{name}: refused ({code}) in {seconds * 1000:.2f} ms — {verdict}")

    files = {f"specs/spec-{n}.yaml": spec_text(n) for n in range(1000)}
    bare = timed(lambda: [yaml.load(t, Loader=yaml.CSafeLoader) for t in files.values()])
    full = timed(lambda: validate_files(files))
    results = validate_files(files)
    assert all(spec is not None for spec, _ in results.values())
    print(f"validated 1,000 files of 50 tasks in {full:.2f} s: {full:.2f} ms per file")
    print(
        f"validation costs {full / bare:.1f}x a bare yaml.safe_load (CSafeLoader) of the same files"
    )
    native_against_yaml("spec-kit", "specs/001-exports/", spec_kit_folder(1000))
    native_against_yaml("kiro", ".kiro/specs/exports/", kiro_folder(1000))


if __name__ == "__main__":
    main()
