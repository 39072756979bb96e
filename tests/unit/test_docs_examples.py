"""The documentation's examples run: every spec, settings file and profiles file the
pages show is read by specbridge's own loaders, every `specbridge …` command parses
against the real command (the offline ones run), the reference tables name what the
code has, and the README stays the front door.

How a page marks an example (docs/development/tests.md says it too): a fenced block's
`title="…"` is the file it shows. `specs/….yaml` and the Markdown of a spec-kit or Kiro
folder are specs, `.github/specbridge.yml` is a repository's settings, `agents.yaml` a
profiles file; a YAML block without a title is recognised by its keys, and one that is
none of these fails here (write it as ```text if it is not a file). Commands are the
lines of ```sh, ```console and ```bash blocks (and the README's indented ones) that run
`specbridge`; a `curl` to the GitHub double's `/_admin/` must name a route it serves.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from werkzeug.exceptions import HTTPException

from bot.agents.profiles import parse_profiles
from bot.cli import _parser, main
from bot.repo_config import CONFIG_PATH, check_config_file
from bot.steer.commands.registry import REGISTRY, Where
from specs.validate import validate_files

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
FIRST_LINES = (
    "python -m pip install . && specbridge serve",
    "python -m pip install '.[dev]' && python -m pytest",
)
# What may run for real here: no server, no database, no GitHub.
OFFLINE = {"validate", "schema", "import"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>.*)$")
_TITLE = re.compile(r'title="([^"]+)"')
_SPEC_FOLDER = re.compile(r"^(specs/\d+-[^/]+|\.kiro/specs/[^/]+)/[^/]+\.md$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    title: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, indented ones (in a list) dedented."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        body, end = [], index + 1
        while end < len(lines) and lines[end].strip() != fence:
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        title = _TITLE.search(info)
        lang = info.split()[0] if info.split() else ""
        text = "\n".join(body) + "\n"
        found.append(Block(page, index + 1, lang, title[1] if title else None, text))
        index = end + 1
    return found


BLOCKS = [block for page in PAGES for block in _blocks(page)]


def _kind(block: Block) -> str | None:
    """What file a block shows: spec, settings, profiles, or None (not a file)."""
    title = block.title or ""
    if title == CONFIG_PATH:
        return "settings"
    if title.endswith("agents.yaml"):
        return "profiles"
    if re.match(r"^specs/.+\.ya?ml$", title) or _SPEC_FOLDER.match(title):
        return "spec"
    if block.lang not in ("yaml", "yml") or title:
        return None
    data = yaml.safe_load(block.text)
    if isinstance(data, dict) and {"title", "phase"} <= data.keys():
        return "spec"
    if isinstance(data, dict) and data.keys() <= _settings_schema()["properties"].keys():
        return "settings"
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        return "profiles"
    return "unknown"


def _settings_schema() -> dict:
    return json.loads((ROOT / "bot" / "repo_config.schema.json").read_text())


def _of_kind(kind: str) -> list[Block]:
    return [b for b in BLOCKS if _kind(b) == kind]


def test_the_pages_show_examples_of_each_kind():
    for kind in ("spec", "settings", "profiles"):
        assert _of_kind(kind), f"no {kind} example found: the convention changed?"
    assert _commands(), "no `specbridge` command found in the docs"


def test_every_yaml_example_says_what_it_is():
    unknown = [str(b) for b in BLOCKS if _kind(b) == "unknown"]
    assert not unknown, (
        f"YAML blocks that are no spec, settings or profiles file: {unknown}; give them a "
        'title="specs/x.yaml" (or .github/specbridge.yml, agents.yaml), or write ```text'
    )


@pytest.mark.parametrize("block", _of_kind("spec"), ids=str)
def test_spec_examples_validate(block: Block):
    files = {b.title or f"specs/example-{b.line}.yaml": b.text for b in _same_spec(block)}
    results = validate_files(files)
    assert results, f"{block}: not read as a spec ({block.title})"
    for path, (spec, findings) in results.items():
        problems = [f"{f.path}:{f.line}: {f.severity}[{f.code}] {f.message}" for f in findings]
        assert spec is not None and not problems, f"{block} ({path}): {problems}"


def _same_spec(block: Block) -> list[Block]:
    """A spec-kit or Kiro folder's files are one spec: every block of that folder."""
    folder = _SPEC_FOLDER.match(block.title or "")
    if not folder:
        return [block]
    return [b for b in _of_kind("spec") if (b.title or "").startswith(folder[1] + "/")]


@pytest.mark.parametrize("block", _of_kind("settings"), ids=str)
def test_settings_examples_fit_their_schema(block: Block):
    findings = check_config_file(block.text.encode(), CONFIG_PATH)
    assert not findings, f"{block}: {[f'{f.line}: {f.message}' for f in findings]}"


@pytest.mark.parametrize("block", _of_kind("profiles"), ids=str)
def test_profiles_examples_parse(block: Block, tmp_path: Path):
    path = tmp_path / "agents.yaml"
    path.write_text(block.text)
    profiles = parse_profiles(path)  # raises, naming the profile, on anything wrong
    assert set(profiles) == set(yaml.safe_load(block.text))


@dataclass(frozen=True)
class Command:
    where: str
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: specbridge {' '.join(self.argv)}"


def _command_lines(page: Path) -> list[tuple[int, str]]:
    """(line, shell text) of each command line a page shows, continuations joined."""
    if page == README:
        lines = [
            (n, line[4:])
            for n, line in enumerate(page.read_text().splitlines(), start=1)
            if line.startswith("    ") and not line.startswith("     ")
        ]
    else:
        lines = [
            (b.line + i + 1, line)
            for b in _blocks(page)
            if b.lang in ("sh", "console", "bash", "shell")
            for i, line in enumerate(b.text.splitlines())
        ]
    joined: list[tuple[int, str]] = []
    for number, line in lines:
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
        else:
            joined.append((number, line.strip().removeprefix("$ ")))
    return joined


def _commands() -> list[Command]:
    found = []
    for page in [README, *PAGES]:
        for number, line in _command_lines(page):
            words = shlex.split(line, comments=True)
            segment: list[str] = []
            for word in [*words, "&&"]:
                if word in ("&&", "||", "|", ";", ">", ">>", "2>"):
                    if segment and segment[0] == "specbridge":
                        where = f"{page.relative_to(ROOT)}:{number}"
                        found.append(Command(where, tuple(segment[1:])))
                    segment = [] if word != ">" else ["(redirect)"]
                else:
                    segment.append(word)
    return found


@pytest.mark.parametrize("command", _commands(), ids=str)
def test_command_examples_parse(command: Command):
    try:
        args = _parser().parse_args(command.argv)
    except SystemExit as exit:
        pytest.fail(f"{command}: the command refuses it (exit {exit.code})")
    assert hasattr(args, "run"), f"{command}: names no subcommand"


@pytest.mark.parametrize(
    "command", [c for c in _commands() if c.argv[:1] and c.argv[0] in OFFLINE], ids=str
)
def test_offline_command_examples_run(command: Command, tmp_path: Path, monkeypatch, capsys):
    """In a checkout holding every file the pages show, as a reader following them has."""
    for block in BLOCKS:
        if _kind(block) in ("spec", "settings") and block.title:
            path = tmp_path / block.title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
    monkeypatch.chdir(tmp_path)
    status = main(list(command.argv))
    output = capsys.readouterr()
    assert status == 0, f"{command}: exit {status}\n{output.out}\n{output.err}"


def _requests_to_the_double() -> list[tuple[str, str, str, str | None]]:
    """(where, method, path, body) of each `curl` to the GitHub double the pages show."""
    found = []
    for page in [README, *PAGES]:
        for number, line in _command_lines(page):
            words = shlex.split(line, comments=True)
            urls = [w for w in words if w.startswith("http") and "/_admin/" in w]
            if words[:1] != ["curl"] or not urls:
                continue  # a request to something else than the double
            url = urls[0]
            body = words[words.index("-d") + 1] if "-d" in words else None
            where = f"{page.relative_to(ROOT)}:{number}"
            found.append((where, "POST" if body else "GET", urlsplit(url).path, body))
    return found


@pytest.mark.parametrize("where,method,path,body", _requests_to_the_double(), ids=lambda v: v)
def test_requests_to_the_double_are_routes_it_serves(
    where: str, method: str, path: str, body: str | None, tmp_path: Path
):
    """The demo's `curl` lines name a route of the double, with its method and JSON."""
    from fakehub import FakeHub

    routes = FakeHub(None, "", tmp_path).app.url_map.bind("127.0.0.1")
    try:
        routes.match(path, method=method)
    except HTTPException as refused:
        pytest.fail(f"{where}: {method} {path}: the double answers {refused.code}")
    if body is not None:
        json.loads(body)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_answers_help(name: str, capsys):
    with pytest.raises(SystemExit) as exit:
        main([name, "--help"])
    assert exit.value.code == 0
    assert f"specbridge {name}" in capsys.readouterr().out


def test_the_command_reference_names_every_subcommand_and_option():
    """docs/reference/cli.md's table against the parser, both ways."""
    documented: dict[str, set[str]] = {}
    for cell in re.findall(r"^\| (`specbridge .*?`) \|", _page("reference/cli.md"), re.M):
        for synopsis in re.findall(r"`specbridge ([^`]*)`", cell):
            name, *words = synopsis.split()
            if not name.startswith("-"):
                options = {w.strip("[]") for w in words if w.strip("[").startswith("-")}
                documented.setdefault(name, set()).update(options)
    for name, parser in _subcommands().items():
        assert name in documented, f"`specbridge {name}` is not in docs/reference/cli.md"
        options = {o for a in parser._actions for o in a.option_strings} - {"-h", "--help"}
        assert options == documented[name], (
            f"`specbridge {name}`: the command takes {sorted(options)}, "
            f"docs/reference/cli.md names {sorted(documented[name])}"
        )
    assert documented.keys() <= _subcommands().keys()


def test_the_comment_commands_reference_is_the_registry():
    """docs/reference/commands.md's table names each command where it works, and no other."""
    places = {
        "a task's issue": Where.TICKET,
        "an agent's pull request": Where.PULL_REQUEST,
        "a tracking issue": Where.TRACKING,
        "anywhere": Where.ANYWHERE,
        "an idea's issue": Where.IDEA,
        "a planning pull request": Where.PLANNING,
    }
    documented = set()
    for place, cells in re.findall(r"^\| (.+?) \| (.+) \|$", _page("reference/commands.md"), re.M):
        if place in places:
            for name in re.findall(r"`/([a-z-]+)", cells):
                documented.add((name, places[place]))
    assert documented == set(REGISTRY), (
        f"not documented: {sorted(set(REGISTRY) - documented)}; "
        f"documented, not a command: {sorted(documented - set(REGISTRY))}"
    )


def test_the_settings_reference_names_every_setting():
    page = _page("reference/settings.md")
    source = (ROOT / "bot" / "settings.py").read_text()
    variables = set(re.findall(r'env\.get\("([A-Z][A-Z0-9_]+)"', source))
    assert variables, "bot/settings.py reads no variable with env.get: the test needs a new look"
    missing = sorted(v for v in variables if f"`{v}`" not in page)
    assert not missing, f"docs/reference/settings.md does not name {missing}"
    keys = _settings_schema()["properties"]
    missing = sorted(k for k in keys if f"| `{k}` |" not in page)
    assert not missing, f"docs/reference/settings.md's settings file table lacks {missing}"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_the_readme_is_the_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md is {len(lines)} lines: move the rest into docs/"
    commands = [line.strip() for line in lines[1:] if line.strip()][:2]
    assert [c.split("#")[0].strip() for c in commands] == list(FIRST_LINES)
    for target in re.findall(r"\]\((?!https?:|#)([^)#]+)", "\n".join(lines)):
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


class _Loader(yaml.SafeLoader):
    """mkdocs.yml names Python objects (!!python/name:…), which this test need not load."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)


def test_every_page_is_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    nav = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in PAGES)
    assert sorted(set(nav)) == pages, (
        f"not in mkdocs.yml's nav: {sorted(set(pages) - set(nav))}; "
        f"in the nav, missing: {sorted(set(nav) - set(pages))}"
    )
    assert config.get("strict") is True


def test_the_site_builds_strict(tmp_path: Path):
    """No broken link or anchor, no page outside the nav (CI builds it too)."""
    pytest.importorskip("material", reason="mkdocs-material: python -m pip install '.[docs]'")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"))
    build(config)  # strict: the first warning raises
    assert (tmp_path / "site" / "index.html").exists()
