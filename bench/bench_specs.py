"""How fast spec files are refused or validated.

    python -m bench.bench_specs

Prints the time to refuse an alias bomb and a 50 MiB file, and the time to
validate 1,000 spec files of 50 tasks each, per file and as a ratio to a
bare yaml.safe_load of the same files.
"""

from __future__ import annotations

import time

import yaml

from specs.load import load_spec
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


if __name__ == "__main__":
    main()
