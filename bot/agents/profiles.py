"""Agent profiles, defined by the operator in the YAML file named by SPECBRIDGE_AGENTS.

A profile runs a coding agent CLI by preset, a command of the operator's, or
dispatches the task to an agent GitHub runs:

    claude:
      preset: claude-code            # claude-code | codex | aider | gemini
      model: claude-sonnet-4-5
      max_turns: 40
      args: [--verbose]              # more flags for the CLI
      env_from: [ANTHROPIC_API_KEY]  # taken from the worker's environment; nothing else passes
      timeout: 3600
      test: pytest -q
      max_revisions: 3               # reruns asked for by reviews, /revise and failing checks
      max_parallel: 4                # runs of this profile at once, everywhere (default: no cap)
      attempts: 2                    # runs per task, each on its own branch and pull request
      pick: first                    # of the attempts, the first to pass its checks is marked
                                     # ready (the default); manual: none is, people pick
      fix_checks: true               # run again when the repository's checks fail (the default)
      reviewers: [octocat, acme/core]    # asked to review once the checks pass (team: org/slug)
      network: [api.anthropic.com:443]   # the preset's API host by default; none: no network
      sandbox: bubblewrap            # the default; docker | podman | none (said explicitly)
      memory: 4G
      processes: 512
      disk: 2G                       # what the clone may grow by in a run
      connections: 64                # open at once through the egress proxy
      price: {input: 3.0, output: 15.0}  # USD per million tokens, when the CLI gives no cost
      budget: {usd: 50, tokens: 20000000}  # a day (UTC), across repositories
    mine:
      command: my-agent "$SPECBRIDGE_TASK_FILE"   # may write $SPECBRIDGE_USAGE_FILE
    copilot:
      github: {assign: copilot, base: main, instructions: "Run the tests before you finish."}
    openhands:
      github: {label: fix-me}
    claude-action:
      github: {comment: "@claude implement this issue as described", revise: "@claude {text}"}
    kiro:
      hosted: kiro                   # a preset: copilot | claude | codex | kiro | openhands |
                                     # claude-code-action | workflow (bot/agents/hosted_presets.py)
    agent-workflow:
      hosted: workflow
      workflow: agent.yml            # dispatched with the task's prompt as its `prompt` input
      inputs: {effort: high}

The file is read again each time a profile is needed, so an edit applies at
once; `check_profiles` says what is wrong with it, for start-up and /readyz.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.agents.hosted_presets import PRESETS as HOSTED_PRESETS
from bot.agents.hosted_presets import PROMPT_INPUT, HostedPreset, preset_settings
from bot.agents.isolation import agent_account
from bot.agents.presets import PRESETS
from bot.agents.sandbox import SYSTEM_DIRS, Limits, Policy, SandboxError, choose_backend
from bot.settings import Settings, SettingsError
from specs.limits import LABEL as MAX_LABEL
from specs.model import MANUAL_AGENT, PICKS

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1800
DEFAULT_MAX_REVISIONS = 3
HOSTED_KINDS = ("assign", "label", "comment")
KEYS = {
    "preset",
    "command",
    "model",
    "max_turns",
    "args",
    "env",
    "env_from",
    "timeout",
    "test",
    "max_revisions",
    "fix_checks",
    "reviewers",
    "github",
    "sandbox",
    "network",
    "read_only",
    "image",
    "memory",
    "address_space",
    "processes",
    "cpus",
    "scratch",
    "disk",
    "connections",
    "hosted",
    "custom_agent",
    "label",
    "workflow",
    "inputs",
    "base",
    "instructions",
    "revise",
    "max_parallel",
    "attempts",
    "pick",
    "price",
    "budget",
}
# Keys only a hosted profile takes (`model` serves both kinds).
HOSTED_KEYS = {"custom_agent", "label", "workflow", "inputs", "base", "instructions", "revise"}


@dataclass(frozen=True)
class Dispatch:
    """A task handed to an agent GitHub runs: an agent assigned (Copilot, Claude, Codex),
    a label, a comment, or a workflow dispatched; `preset`: the hosted preset it expands."""

    assign: str | None = None  # "copilot", "claude" or "codex"
    label: str | None = None
    comment: str | None = None
    base: str | None = None
    instructions: str | None = None
    custom_agent: str | None = None
    model: str | None = None
    preset: str | None = None
    workflow: str | None = None  # the workflow's file name or id
    inputs: tuple[tuple[str, str], ...] = ()
    revise: str | None = None  # the comment asking for a revision, `{text}` the request

    @property
    def spec(self) -> HostedPreset | None:
        """The preset it expands, or, said the long way, the one it matches."""
        return HOSTED_PRESETS.get(self.preset or self.assign or "")

    @property
    def assignee(self) -> str | None:
        """The login of the agent assigned (as GraphQL's suggestedActors name it)."""
        return HOSTED_PRESETS[self.assign].value if self.assign else None

    @property
    def revise_template(self) -> str | None:
        """How a revision is asked for on its pull request; None: dispatched again
        (a workflow), or no way known (a label or comment said the long way, with no
        `revise`)."""
        if self.workflow:
            return None
        spec = self.spec
        return self.revise or (spec.revise if spec else None)

    @property
    def as_person(self) -> bool:
        return bool(self.assign) or bool(self.spec and self.spec.as_person)

    @property
    def authors(self) -> tuple[str, ...]:
        return self.spec.authors if self.spec else ()

    @property
    def branch_prefix(self) -> str | None:
        return self.spec.branch_prefix if self.spec else None

    def workflow_inputs(self, prompt: str, issue: int) -> dict[str, str]:
        """The dispatch's inputs: the profile's, `{prompt}` and `{issue}` filled in, and
        the prompt as `prompt` when no input carries it."""
        inputs = {
            key: value.replace("{issue}", str(issue)).replace("{prompt}", prompt)
            for key, value in self.inputs
        }
        if not any("{prompt}" in value for _, value in self.inputs):
            inputs[PROMPT_INPUT] = prompt
        return inputs


@dataclass(frozen=True)
class AgentProfile:
    name: str
    command: str | None = None  # None: dispatched on GitHub
    timeout: int = DEFAULT_TIMEOUT
    test: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_from: tuple[str, ...] = ()
    preset: str | None = None
    max_revisions: int = DEFAULT_MAX_REVISIONS
    policy: Policy = field(default_factory=Policy)
    limits: Limits = field(default_factory=lambda: Limits(DEFAULT_TIMEOUT))
    dispatch: Dispatch | None = None
    # Run the agent again when the repository's checks fail on its pull request.
    fix_checks: bool = False
    # Asked to review its pull request once the checks pass: logins, and teams as org/slug.
    reviewers: tuple[str, ...] = ()
    # Runs of this profile at once across every repository (None: no cap); for an agent
    # GitHub runs, the issues handed to it and not yet done.
    max_parallel: int | None = None
    # Runs per task, each on its own branch (…/<task>/<n>) and draft pull request.
    attempts: int = 1
    # Of several attempts: "first", the first to pass its checks is marked ready for
    # review; "manual", none is (people pick).
    pick: str = "first"
    model: str | None = None
    # USD per million tokens (input, output): the cost of a run whose agent gives none.
    price: tuple[float, float] | None = None
    # What its runs may spend a day (UTC) across repositories: {"usd": N, "tokens": N}.
    budget: dict[str, float] = field(default_factory=dict)

    @property
    def hosted(self) -> bool:
        return self.dispatch is not None

    @property
    def reviewer_logins(self) -> list[str]:
        return [r for r in self.reviewers if "/" not in r]

    @property
    def reviewer_teams(self) -> list[str]:
        """Team slugs (GitHub asks a team of the repository's organization by its slug)."""
        return [r.split("/", 1)[1] for r in self.reviewers if "/" in r]

    def environment(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """The profile's own variables and those it names from the worker's environment."""
        missing = [name for name in self.env_from if name not in environ]
        if missing:
            raise SettingsError(
                f"SPECBRIDGE_AGENTS: profile {self.name!r} takes {', '.join(missing)} from the "
                "environment, which does not set it"
            )
        return {**self.env, **{name: environ[name] for name in self.env_from}}


# What acts as a person on GitHub (bot/github/user_token.py): no local agent is given it.
PERSONS_SECRETS = frozenset(
    {"SPECBRIDGE_AGENT_USER_TOKEN", "SPECBRIDGE_SECRET_KEY", "GITHUB_CLIENT_SECRET"}
)


def load_profiles(settings: Settings) -> dict[str, AgentProfile]:
    if settings.agents_file is None:
        return {}
    return parse_profiles(settings.agents_file)


def check_profiles(
    settings: Settings,
    runs_agents: bool,
    environ: Mapping[str, str] = os.environ,
    warn: bool = False,
) -> dict[str, AgentProfile]:
    """The profiles; SettingsError, in one line, for a profiles file that cannot work: one
    that does not parse or has a profile with nothing to run; and, where agents run, a
    variable a profile takes that is unset, a sandbox that cannot start here (or is not
    wired), or a preset's CLI its runs would not find."""
    profiles = load_profiles(settings)
    if not runs_agents:
        return profiles
    if warn and settings.agents_file is None:
        log.warning("%s", NO_AGENTS)
    account = agent_account(settings)
    for profile in profiles.values():
        profile.environment(environ)
        if profile.command is None:
            continue
        if profile.policy.backend == "none" and warn:
            log.warning("agent profile %r runs without a sandbox (sandbox: none)", profile.name)
        try:
            backend = choose_backend(profile.policy.backend, account)
        except SandboxError as error:
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {profile.name!r}: {error}") from None
        problem = _unrunnable(profile, backend, environ)
        if problem:
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {profile.name!r}: {problem}")
    return profiles


# Said where agents would run when there is no profiles file: tasks still get issues.
NO_AGENTS = (
    "no agent profiles (SPECBRIDGE_AGENTS is not set): tasks get issues and a board, "
    "and no agent works them"
)


def no_agents(settings: Settings) -> str | None:
    """NO_AGENTS when this process has no profiles file, else None."""
    return NO_AGENTS if settings.agents_file is None else None


def _unrunnable(profile: AgentProfile, backend: str, environ: Mapping[str, str]) -> str | None:
    """Why a profile's runs would fail before its agent starts: a sandbox not wired yet,
    or a preset's CLI missing from the PATH its runs get (or hidden by the sandbox)."""
    if backend in ("docker", "podman"):
        return f"the {backend} sandbox is not wired yet: use bubblewrap (the default) or none"
    if profile.preset is None:
        return None
    program = PRESETS[profile.preset].program
    # The PATH a run gets (bot/agents/run.py): the profile's own, else the worker's.
    path = profile.env.get("PATH") or environ.get("PATH") or os.defpath
    found = shutil.which(program, path=path)
    if found is None:
        return (
            f"its CLI `{program}` is not on the PATH its runs get ({path}): install it on "
            "this worker, or set the profile's env PATH to where it is"
        )
    if backend == "bubblewrap":
        shown = (*SYSTEM_DIRS, *profile.policy.read_only)
        hidden = [p for p in (Path(found), Path(found).resolve()) if not _under(p, shown)]
        if hidden:
            return (
                f"its CLI {hidden[0]} is outside what the sandbox shows ({', '.join(shown)}): "
                "add its folder to the profile's read_only"
            )
    return None


def _under(path: Path, folders: tuple[str, ...]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


def parse_profiles(path: Path) -> dict[str, AgentProfile]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        reason = error.strerror or str(error)
        raise SettingsError(f"SPECBRIDGE_AGENTS: cannot read {path}: {reason}") from None
    except yaml.YAMLError as error:
        problem = _yaml_problem(path, error)
        raise SettingsError(f"SPECBRIDGE_AGENTS: cannot read {problem}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"SPECBRIDGE_AGENTS: {path} must map profile names to profiles")
    profiles = {}
    for name, value in data.items():
        if name == MANUAL_AGENT:
            raise SettingsError(f"SPECBRIDGE_AGENTS: {MANUAL_AGENT!r} is reserved for no agent")
        try:
            profiles[str(name)] = _profile(str(name), value)
        except ValueError as error:
            raise SettingsError(f"SPECBRIDGE_AGENTS: profile {name!r}: {error}") from None
    return profiles


def _yaml_problem(path: Path, error: yaml.YAMLError) -> str:
    """`path`, line L, column C: what YAML found there (its marks count from 0)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
    if mark is None:
        return f"{path}: {problem}"
    return f"{path}, line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _profile(name: str, value: Any) -> AgentProfile:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping")
    unknown = sorted(set(value) - KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    timeout = _positive(value, "timeout", DEFAULT_TIMEOUT)
    env = value.get("env") or {}
    if not isinstance(env, dict):
        raise ValueError("env must be a mapping")
    env_from = _strings(value, "env_from")
    if kept := sorted(set(env_from) & PERSONS_SECRETS):
        raise ValueError(f"env_from: {kept[0]} is a person's token specbridge never gives an agent")
    preset, command = _command(value)
    if "hosted" in value and "github" in value:
        raise ValueError("has both hosted and github: keep one")
    dispatch = _hosted(value) if "hosted" in value else _dispatch(value.get("github"))
    if sum(x is not None for x in (command, dispatch)) != 1:
        raise ValueError("needs one of preset, command, hosted or github")
    if dispatch is not None and dispatch.label and len(dispatch.label) > MAX_LABEL:
        # GitHub makes no such label: every issue handed over would fail to be labelled.
        raise ValueError(
            f"the label {dispatch.label[:30]!r}… is {len(dispatch.label)} characters; "
            f"GitHub allows {MAX_LABEL} in a label's name"
        )
    stray = sorted(HOSTED_KEYS & set(value)) if "hosted" not in value else []
    if stray:
        raise ValueError(f"{stray[0]} applies to a hosted: agent only")
    if preset is not None:
        if "network" not in value:
            value = {**value, "network": list(preset.hosts)}
        if preset.key and "env_from" not in value:
            env_from = (preset.key,)
        env = {**preset.env, **env}
        value = {**preset.limits, **value}
    return AgentProfile(
        name=name,
        command=command,
        timeout=timeout,
        test=value.get("test"),
        env={str(k): str(v) for k, v in env.items()},
        env_from=env_from,
        preset=preset.name if preset else None,
        max_revisions=_positive(value, "max_revisions", DEFAULT_MAX_REVISIONS, zero=True),
        policy=Policy.from_profile(value),
        limits=Limits.from_profile(timeout, value),
        dispatch=dispatch,
        fix_checks=_fix_checks(value, dispatch is not None),
        reviewers=_strings(value, "reviewers"),
        max_parallel=_positive(value, "max_parallel", 0, zero=True) or None,
        attempts=_attempts(value, dispatch is not None),
        pick=_pick(value),
        model=str(value["model"]) if value.get("model") else None,
        price=_price(value.get("price")),
        budget=caps(value.get("budget"), "budget"),
    )


def _attempts(value: dict[str, Any], hosted: bool) -> int:
    attempts = _positive(value, "attempts", 1)
    if attempts > 1 and hosted:
        raise ValueError("attempts applies to agents that run here, not to github: ones")
    return attempts


def _pick(value: dict[str, Any]) -> str:
    pick = value.get("pick", "first")
    if pick not in PICKS:
        raise ValueError(f"pick must be one of {', '.join(PICKS)}")
    return str(pick)


def _price(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"input", "output"}:
        raise ValueError("price must be {input: USD, output: USD} per million tokens")
    prices = (value["input"], value["output"])
    if not all(_amount(p) for p in prices):
        raise ValueError("price: input and output must be numbers ≥ 0")
    return float(prices[0]), float(prices[1])


def caps(value: Any, what: str) -> dict[str, float]:
    """A budget: `{usd: N, tokens: N}`, either or both; ValueError when it does not fit."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value or not set(value) <= {"usd", "tokens"}:
        raise ValueError(f"{what} must be {{usd: N, tokens: N}} (either or both)")
    if not all(_amount(v) for v in value.values()):
        raise ValueError(f"{what}: usd and tokens must be numbers ≥ 0")
    return {str(k): float(v) for k, v in value.items()}


def _amount(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(value) and value >= 0


def _fix_checks(value: dict[str, Any], hosted: bool) -> bool:
    """Whether to run again on failing checks: said, else yes for an agent that runs here
    (a preset or a command: it reads the prompt's account of the failures, as it reads a
    review's), no for one GitHub runs (told its own way)."""
    fix = value.get("fix_checks", not hosted)
    if not isinstance(fix, bool):
        raise ValueError("fix_checks must be true or false")
    if fix and hosted:
        raise ValueError("fix_checks applies to agents that run here, not to github: ones")
    return fix


def _command(value: dict[str, Any]) -> tuple[Any, str | None]:
    """The preset (or None) and the shell command line it runs."""
    if "preset" in value and "command" in value:
        raise ValueError("has both preset and command: keep one")
    if "command" in value:
        if not isinstance(value["command"], str) or not value["command"].strip():
            raise ValueError("command must be a shell command line")
        return None, value["command"]
    if "preset" not in value:
        return None, None
    preset = PRESETS.get(value["preset"])
    if preset is None:
        raise ValueError(f"unknown preset {value['preset']!r} (known: {', '.join(PRESETS)})")
    max_turns = _positive(value, "max_turns", 0, zero=True) or None
    model = value.get("model")
    return preset, preset.command(str(model) if model else None, max_turns, _strings(value, "args"))


def _dispatch(value: Any) -> Dispatch | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("github must be a mapping, such as {label: fix-me}")
    kinds = [kind for kind in HOSTED_KINDS if kind in value]
    if len(kinds) != 1:
        raise ValueError("github needs one of assign, label or comment")
    if value.get("assign") not in (None, "copilot", "claude", "codex"):
        raise ValueError("github assign: only copilot, claude or codex can be assigned")
    known = {"base", "instructions", "custom_agent", "model", "revise", *HOSTED_KINDS}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"github: unknown key {unknown[0]!r}")
    if "revise" in value and "{text}" not in str(value["revise"]):
        raise ValueError("github revise must say where the request goes, with {text}")
    return Dispatch(**{key: str(v) for key, v in value.items()})


def _hosted(value: dict[str, Any]) -> Dispatch:
    """`hosted: <preset>` and its settings, expanded to the preset's way to start."""
    name = value["hosted"]
    settings = preset_settings(name, value)
    spec = HOSTED_PRESETS[name]
    inputs = settings.pop("inputs", {})
    start: dict[str, Any] = {
        "assign": {"assign": name},
        "label": {"label": settings.pop("label", spec.value)},
        "comment": {"comment": spec.value},
        "workflow": {"workflow": settings.pop("workflow", None)},
    }[spec.start]
    return Dispatch(preset=name, inputs=tuple(inputs.items()), **start, **settings)


def _positive(value: dict[str, Any], key: str, default: int, zero: bool = False) -> int:
    number = value.get(key, default)
    if not isinstance(number, int) or isinstance(number, bool) or number < (0 if zero else 1):
        raise ValueError(f"{key} must be a whole number {'≥ 0' if zero else '> 0'}")
    return number


def _strings(value: dict[str, Any], key: str) -> tuple[str, ...]:
    items = value.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, str | int | float) for i in items):
        raise ValueError(f"{key} must be a list")
    return tuple(str(i) for i in items)
