"""The layout's rules: each stage of bot/ imports only the stages below it, and
no module of bot/ takes part in an import circle (even through an import inside
a function, which only hides the circle). See bot/__init__.py for the stages.

The GitHub double has layers too (fakehub/README.md): its state and the helpers every
route shares at the bottom, what GitHub does in between, the server on top."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

# Higher imports lower; stages of one rank (web and ops, review and steer) do
# not import each other.
RANKS = {
    "cli": 9,
    "web": 8,
    "ops": 8,
    "events": 7,
    "review": 6,
    "steer": 6,
    "sync": 5,
    "agents": 4,
    "github": 3,
    "foundations": 2,
    "specs": 1,
    "storage": 1,
}
PACKAGES = ("bot", "specs", "storage")


def stage_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "bot":
        return parts[0]
    if len(parts) > 1 and parts[1] in RANKS:
        return parts[1]
    return "foundations"


def may_import(importer: str, imported: str) -> bool:
    source, target = stage_of(importer), stage_of(imported)
    return source == target or RANKS[target] < RANKS[source]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(
    module: str, source: str, known: set[str], packages: tuple[str, ...] = PACKAGES
) -> Iterator[str]:
    """The modules of ours that `source` imports, wherever in the file."""
    package = module if module in known and _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from bot.events import handlers` imports the module bot.events.handlers.
            names = [
                f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known
            ]
            names = names or [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] in packages:
                yield _nearest_known(name, known)


def _is_package(module: str) -> bool:
    return (REPO_ROOT / module.replace(".", "/") / "__init__.py").exists()


def _nearest_known(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def import_graph(packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    files = [p for package in packages for p in (REPO_ROOT / package).rglob("*.py")]
    known = {module_name(p) for p in files}
    return {
        module_name(p): set(imports_of(module_name(p), p.read_text(), known, packages))
        - {module_name(p)}
        for p in files
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{importer} ({stage_of(importer)}) imports {imported} ({stage_of(imported)})"
        for importer, targets in graph.items()
        for imported in targets
        if not may_import(importer, imported)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, found by a depth-first walk."""
    found, state = [], {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                found.append([*trail[trail.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_stage_imports_a_stage_above_it():
    assert upward_imports(import_graph()) == []


def test_no_import_circle():
    assert circles(import_graph()) == []


# The double's bottom layer: what it knows (its state, git, GitHub's descriptions and
# limits, who a request acts as, the webhooks' shapes, the answers every route shares).
DOUBLE_BOTTOM = {
    f"fakehub.{name}"
    for name in (
        "actors",
        "fixtures",
        "git",
        "http",
        "limits",
        "model",
        "openapi",
        "state",
        "webhooks",
    )
}


def test_the_double_has_no_import_circle():
    assert circles(import_graph(("fakehub",))) == []


def test_the_doubles_bottom_imports_only_the_bottom():
    graph = import_graph(("fakehub",))
    assert (
        sorted(
            f"{module} imports {imported}"
            for module in DOUBLE_BOTTOM
            for imported in graph[module]
            if imported not in DOUBLE_BOTTOM
        )
        == []
    )


def test_only_the_doubles_face_imports_its_server():
    """Routes and what GitHub does never reach up to the server: it calls them."""
    graph = import_graph(("fakehub",))
    assert (
        sorted(
            module
            for module, imported in graph.items()
            if "fakehub.server" in imported and module not in ("fakehub", "fakehub.__main__")
        )
        == []
    )


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("bot.sync.writer", "bot.github.issues", True),
        ("bot.sync.writer", "bot.steer.steering", False),
        ("bot.github.issues", "bot.agents.run", False),
        ("bot.review.checks", "bot.steer.steering", False),
        ("bot.locks", "bot.queue", True),
        ("specs.load", "bot.settings", False),
        ("bot.web.app", "bot.events.deliveries", True),
    ],
)
def test_the_rule_tells_a_stage_from_the_ones_above(importer, imported, allowed):
    assert may_import(importer, imported) is allowed


def test_an_import_inside_a_function_counts():
    source = "def later():\n    from bot.events.router import Event\n"
    known = {"bot.sync.progress", "bot.events.router"}
    imported = list(imports_of("bot.sync.progress", source, known))
    assert upward_imports({"bot.sync.progress": set(imported)}) == [
        "bot.sync.progress (sync) imports bot.events.router (events)"
    ]


def test_a_circle_is_found_through_a_lazy_import():
    graph = {"bot.sync.progress": {"bot.sync.writer"}, "bot.sync.writer": {"bot.sync.progress"}}
    assert circles(graph) == [["bot.sync.progress", "bot.sync.writer", "bot.sync.progress"]]
