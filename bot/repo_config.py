"""Per-repository settings from `.github/specbridge.yml` in the target repository.

A broken file is reported and the defaults apply: one bad setting must not
stop a repository's specs from syncing.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from specs.load import compose
from specs.model import Finding
from specs.sources import FORMATS, spec_path_of

CONFIG_PATH = ".github/specbridge.yml"
MAX_CONFIG_BYTES = 64 * 1024
PHASES = ("backlog", "analyzing", "building", "testing", "done")
# What `status:` may name a column for: the phases, and tickets whose last run failed.
STATUS_KEYS = (*PHASES, "failed")
# How a task's progress goes back into its file: a pull request from the branch
# specbridge/progress (never a push to a protected branch), a commit on the
# default branch, or not at all.
WRITE_BACK = ("pull_request", "commit", "off")
# How a planned spec goes from one phase to the next once its pull request merges: when
# a person comments `/plan` or `/tasks` (manual), or at once (auto).
PLANNING_PHASES = ("manual", "auto")


@dataclass(frozen=True)
class RepoConfig:
    specs_path: str = "specs/"
    project_owner: str | None = None
    project_number: int | None = None
    # Board columns named for phases; a phase not named here goes to the board's
    # own column for it (bot/board.py).
    status: dict[str, str] = field(default_factory=dict)
    # The spec formats read (specs/sources.py); by default every one, wherever found.
    formats: tuple[str, ...] = FORMATS
    write_back: str = "pull_request"
    # The agent profile (SPECBRIDGE_AGENTS) that writes specs from ideas (bot/agents/planning.py).
    planner: str | None = None
    phases: str = "manual"
    # Agent runs this repository may have at once (None: no cap of its own).
    max_parallel: int | None = None
    # What agents may spend on each spec: {"usd": N, "tokens": N, "specs": {id: {...}}}.
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def has_board(self) -> bool:
        return self.project_owner is not None and self.project_number is not None

    def spec_of(self, path: str) -> str | None:
        """The spec a repository file belongs to (a YAML file, or a spec-kit or Kiro
        folder), or None."""
        return spec_path_of(path, self.formats, self.specs_path)

    def is_spec_path(self, path: str) -> bool:
        return self.spec_of(path) is not None

    @property
    def spec_roots(self) -> list[str]:
        """The folders that hold every spec of the formats read."""
        roots = [self.specs_path] if "yaml" in self.formats else []
        roots += [r for fmt, r in _ROOTS.items() if fmt in self.formats and r not in roots]
        return roots

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RepoConfig:
        """The configuration recorded on a repository's row (see `as_dict`)."""
        data = data or {}
        project = data.get("project") or {}
        return cls(
            specs_path=data.get("specs_path", "specs/"),
            project_owner=project.get("owner"),
            project_number=project.get("number"),
            status=dict(data.get("status") or {}),
            formats=tuple(data.get("formats") or FORMATS),
            write_back=data.get("write_back") or "pull_request",
            planner=data.get("planner"),
            phases=data.get("phases") or "manual",
            max_parallel=data.get("max_parallel"),
            budget=dict(data.get("budget") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "specs_path": self.specs_path,
            "project": (
                {"owner": self.project_owner, "number": self.project_number}
                if self.has_board
                else None
            ),
            "status": self.status,
            "formats": list(self.formats),
            "write_back": self.write_back,
            "planner": self.planner,
            "phases": self.phases,
            "max_parallel": self.max_parallel,
            "budget": self.budget,
        }


# Where each native format keeps its folders (spec-kit's and Kiro's own places).
_ROOTS = {"spec-kit": "specs/", "kiro": ".kiro/specs/"}


class ConfigError(ValueError):
    pass


def parse_repo_config(text: bytes | None) -> tuple[RepoConfig, str | None]:
    """The configuration and, when the file is broken, why (defaults then apply)."""
    if text is None:
        return RepoConfig(), None
    try:
        return _parse(text), None
    except ConfigError as error:
        return RepoConfig(), f"{CONFIG_PATH}: {error}; using the defaults"


def _parse(text: bytes) -> RepoConfig:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.safe_load(text.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"not valid YAML ({_first_line(error)})") from None
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of settings")
    known = {"specs_path", "project", "status", "formats", "write_back", "planner", "phases"}
    known |= {"max_parallel", "budget"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(map(str, unknown)))}")
    specs_path = data.get("specs_path", "specs/")
    if not isinstance(specs_path, str) or not specs_path.strip("/"):
        raise ConfigError("specs_path must be a directory path such as specs/")
    owner, number = _project(data.get("project"))
    return RepoConfig(
        specs_path=specs_path.strip("/") + "/",
        project_owner=owner,
        project_number=number,
        status=_status(data.get("status")),
        formats=_formats(data.get("formats")),
        write_back=_write_back(data.get("write_back", "pull_request")),
        planner=_planner(data.get("planner")),
        phases=_phases(data.get("phases", "manual")),
        max_parallel=_max_parallel(data.get("max_parallel")),
        budget=_budget(data.get("budget")),
    )


def _planner(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("planner must name an agent profile")
    return value.strip()


def _phases(value: Any) -> str:
    if value not in PLANNING_PHASES:
        raise ConfigError(f"phases must be one of {', '.join(PLANNING_PHASES)}")
    return str(value)


def _budget(value: Any) -> dict[str, Any]:
    """`{usd: N, tokens: N, specs: {spec-id: {usd: N, tokens: N}}}`: every spec's caps, and
    a spec's own; each optional."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not set(value) <= {"usd", "tokens", "specs"}:
        raise ConfigError("budget must be {usd: N, tokens: N, specs: {spec-id: {usd, tokens}}}")
    specs = value.get("specs") or {}
    if not isinstance(specs, dict):
        raise ConfigError("budget specs must map spec ids to {usd: N, tokens: N}")
    budget: dict[str, Any] = _caps({k: v for k, v in value.items() if k != "specs"}, "budget")
    named = {str(key): _caps(caps, f"budget of spec {key}") for key, caps in specs.items()}
    if named:
        budget["specs"] = named
    return budget


def _caps(value: Any, what: str) -> dict[str, float]:
    if not isinstance(value, dict) or not set(value) <= {"usd", "tokens"}:
        raise ConfigError(f"{what} must be {{usd: N, tokens: N}}")
    for amount in value.values():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise ConfigError(f"{what}: usd and tokens must be numbers ≥ 0")
    return {str(k): float(v) for k, v in value.items()}


def _formats(value: Any) -> tuple[str, ...]:
    if value is None:
        return FORMATS
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in FORMATS for v in value)
    ):
        raise ConfigError(f"formats must list one or more of {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(value))


def _write_back(value: Any) -> str:
    if value is False:  # YAML 1.1 reads an unquoted off as false
        return "off"
    if value not in WRITE_BACK:
        raise ConfigError(f"write_back must be one of {', '.join(WRITE_BACK)}")
    return str(value)


def _max_parallel(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError("max_parallel must be a whole number of agent runs, 1 or more")
    return value


def _project(value: Any) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("owner"), str)
        or not isinstance(value.get("number"), int)
        or isinstance(value.get("number"), bool)
    ):
        raise ConfigError("project must be {owner: LOGIN, number: N}")
    return value["owner"], value["number"]


def _status(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError("status must map phases to column names")
    unknown = set(value) - set(STATUS_KEYS)
    if unknown:
        raise ConfigError(
            f"status has unknown phase(s) {', '.join(sorted(map(str, unknown)))}; "
            f"phases are {', '.join(PHASES)}, and failed names a column for failed tickets"
        )
    return dict(value)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


# -- `specbridge validate .github/specbridge.yml` ---------------------------------------


def is_config_path(path: str) -> bool:
    """Whether a path (as given on the command line) is a repository's settings file."""
    posix = path.replace("\\", "/")
    return posix == CONFIG_PATH or posix.endswith("/" + CONFIG_PATH)


def check_config_file(text: bytes, path: str) -> list[Finding]:
    """The settings file checked against its JSON Schema (bot/repo_config.schema.json,
    the one `specbridge schema --config` prints), each finding at its line."""
    if len(text) > MAX_CONFIG_BYTES:
        message = (
            f"the file is {len(text):,} bytes; the settings file is at most {MAX_CONFIG_BYTES:,}"
        )
        return [Finding(path, 1, 1, "error", "too-large", message)]
    node, findings = compose(text, path)
    if node is None:
        return [f for f in findings if f.code != "empty"]  # an empty file: the defaults
    import jsonschema  # only this command needs it: the processes that serve do not load it

    data = yaml.safe_load(text)
    validator = jsonschema.Draft202012Validator(_schema())
    found = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        found += _config_findings(error, node, path)
    return sorted(dict.fromkeys(found), key=lambda f: (f.line, f.column))


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("bot").joinpath("repo_config.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _config_findings(error: Any, top: yaml.Node, path: str) -> list[Finding]:
    """Findings for one jsonschema.ValidationError, at the node it is about."""
    node = _node_at(top, list(error.absolute_path))
    what = _setting_name(list(error.absolute_path))

    def at(where: yaml.Node, code: str, message: str) -> Finding:
        mark = where.start_mark
        return Finding(path, mark.line + 1, mark.column + 1, "error", code, message)

    if error.validator == "additionalProperties" and isinstance(node, yaml.MappingNode):
        allowed = list(error.schema.get("properties", {}))
        keys = [(k, v) for k, v in node.value if getattr(k, "value", None) not in allowed]
        where = f" in {what}" if error.absolute_path else ""
        return [
            at(
                key,
                "unknown-setting",
                f"unknown setting '{key.value}'{where}; the settings are {', '.join(allowed)}"
                + _closest(str(key.value), allowed),
            )
            for key, _ in keys
        ]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        needs = " and ".join(f"'{k}'" for k in missing)
        return [at(node, "missing-setting", f"{what} needs {needs}")]
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value if c is not False)
        return [
            at(node, "invalid-setting", f"{what} must be one of {choices}, not {error.instance!r}")
        ]
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else []
        wanted = wanted or [error.validator_value]
        expected = " or ".join(_TYPES.get(e, e) for e in wanted if e != "null")
        message = f"{what} must be {expected}, not {_kind(error.instance)}"
        return [at(node, "invalid-setting", message)]
    return [at(node, "invalid-setting", f"{what}: {error.message}")]


_TYPES = {
    "object": "a mapping",
    "integer": "a whole number",
    "string": "text",
    "array": "a list",
    "boolean": "true or false",
}


def _setting_name(where: list[Any]) -> str:
    """`project.number`, `'formats' item 2`, or the file itself."""
    if not where:
        return "the file"
    keys = [str(step) for step in where if not isinstance(step, int)]
    name = f"'{'.'.join(keys)}'"
    if isinstance(where[-1], int):
        name = f"{name} item {where[-1] + 1}"
    return name


def _node_at(node: yaml.Node, where: list[Any]) -> yaml.Node:
    for step in where:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == step), node)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
    return node


def _closest(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _kind(value: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)
