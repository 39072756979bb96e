"""The agents GitHub hosts, as presets: `hosted: <name>` in a profile.

Each preset says, as its own documentation does, how the agent is started (an
assignment, a label, a comment, a workflow dispatched), how it is asked to revise
its pull request (a comment in its own words, or a new dispatch), how its pull
request is recognised (its author, its branch's prefix; always a closing keyword
naming the issue), and which profile settings it takes. docs/hosted-agents.md shows
the table to people, with what each needs enabled on GitHub.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The settings a hosted profile may give, besides the common ones (timeout, max_revisions,
# reviewers).
SETTINGS = (
    "base",
    "instructions",
    "custom_agent",
    "model",
    "label",
    "workflow",
    "inputs",
    "revise",
)
# The workflow input that carries the task's prompt, unless the profile's `inputs` name it.
PROMPT_INPUT = "prompt"
# GitHub takes at most 25 inputs in one dispatch (REST description of
# `POST /repos/{o}/{r}/actions/workflows/{id}/dispatches`).
MAX_WORKFLOW_INPUTS = 25


@dataclass(frozen=True)
class HostedPreset:
    name: str
    start: str  # assign | label | comment | workflow
    value: str | None  # the agent assigned, the label added, or the comment posted
    revise: str | None  # the comment that asks for a revision ({text}); None: dispatch again
    authors: tuple[str, ...]  # who opens its pull requests (empty: anyone)
    branch_prefix: str | None  # how its branches start (None: any)
    settings: frozenset[str]
    # Whether its comments must come from a person (SPECBRIDGE_AGENT_USER_TOKEN): the agent
    # answers a person with write access only, never another App.
    as_person: bool
    needs: str  # what must be enabled on GitHub: said when GitHub refuses to start it
    docs: str  # where its way to start and to revise is documented (docs/hosted-agents.md)


def _preset(name: str, **fields: Any) -> HostedPreset:
    return HostedPreset(name=name, **fields)


_ASSIGNED = frozenset({"base", "instructions", "custom_agent", "model", "revise"})

PRESETS: dict[str, HostedPreset] = {
    p.name: p
    for p in (
        _preset(
            "copilot",
            start="assign",
            value="copilot-swe-agent",
            revise="@copilot {text}",
            authors=("Copilot", "copilot-swe-agent[bot]"),
            branch_prefix="copilot/",
            settings=_ASSIGNED,
            as_person=True,
            needs="the Copilot coding agent enabled for the repository; a person's token "
            "(SPECBRIDGE_AGENT_USER_TOKEN) with a Copilot seat and write access",
            docs="https://github.blog/changelog/2025-12-03-assign-issues-to-copilot-using-the-api",
        ),
        _preset(
            "claude",
            start="assign",
            value="claude",
            revise="@claude {text}",
            authors=("claude", "claude[bot]"),
            branch_prefix="claude/",
            settings=_ASSIGNED,
            as_person=True,
            needs="Claude enabled as a partner agent (organization: Settings → Copilot → "
            "Coding agent); a person's token with Copilot Pro+ or Enterprise",
            docs="https://claudecode.jp/en/news/engineer/github-agent-hq-claude-and-codex",
        ),
        _preset(
            "codex",
            start="assign",
            value="codex",
            revise="@codex {text}",
            authors=("codex", "codex[bot]"),
            branch_prefix="codex/",
            settings=_ASSIGNED,
            as_person=True,
            needs="Codex enabled as a partner agent (organization: Settings → Copilot → "
            "Coding agent); a person's token with Copilot Pro+ or Enterprise",
            docs="https://claudecode.jp/en/news/engineer/github-agent-hq-claude-and-codex",
        ),
        _preset(
            "kiro",
            start="label",
            value="kiro",
            revise="/kiro fix {text}",
            authors=(),
            branch_prefix=None,
            settings=frozenset({"label", "revise"}),
            as_person=True,
            needs="the Kiro Agent GitHub App installed on the repository, and the person "
            "whose token specbridge uses connected to Kiro",
            docs="https://kiro.dev/docs/autonomous-agent/github",
        ),
        _preset(
            "openhands",
            start="label",
            value="fix-me",
            revise="@openhands-agent {text}",
            authors=(),
            branch_prefix="openhands-fix-issue-",
            settings=frozenset({"label", "revise"}),
            as_person=False,
            needs="the OpenHands resolver workflow (.github/workflows/openhands-resolver.yml) "
            "with its secrets, and Actions allowed to create pull requests",
            docs="https://docs.openhands.dev/usage/how-to/github-action",
        ),
        _preset(
            "claude-code-action",
            start="comment",
            value="@claude implement this issue as it describes, and open a pull request "
            "that fixes it.",
            revise="@claude {text}",
            authors=(),
            branch_prefix="claude/",
            settings=frozenset({"revise"}),
            as_person=True,
            needs="a workflow running anthropics/claude-code-action@v1 on issue_comment, "
            "pull_request_review and pull_request_review_comment, with its API key secret",
            docs="https://github.com/anthropics/claude-code-action/blob/main/examples/claude.yml",
        ),
        _preset(
            "workflow",
            start="workflow",
            value=None,
            revise=None,
            authors=(),
            branch_prefix=None,
            settings=frozenset({"workflow", "inputs", "base"}),
            as_person=False,
            needs="a workflow with `on: workflow_dispatch` taking the prompt as an input; the "
            "App's Actions permission (write) and its workflow_run event",
            docs="https://docs.github.com/en/rest/actions/workflows"
            "#create-a-workflow-dispatch-event",
        ),
    )
}


def preset_settings(name: Any, value: Mapping[str, Any]) -> dict[str, Any]:
    """The hosted preset's settings from a profile, checked: ValueError says what is
    wrong in a person's words."""
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ValueError(f"unknown hosted agent {name!r} (known: {', '.join(PRESETS)})")
    given = {key: value[key] for key in SETTINGS if key in value}
    extra = sorted(set(given) - preset.settings)
    if extra:
        takes = ", ".join(sorted(preset.settings)) or "none"
        raise ValueError(f"hosted: {name} takes no {extra[0]!r} (it takes: {takes})")
    for key in ("base", "instructions", "custom_agent", "model", "label", "revise"):
        if key in given and (not isinstance(given[key], str) or not given[key].strip()):
            raise ValueError(f"{key} must be a non-empty string")
    if "revise" in given and "{text}" not in given["revise"]:
        raise ValueError("revise must say where the request goes, with {text}")
    if preset.start == "workflow":
        given["inputs"] = _inputs(given)
        if not isinstance(given.get("workflow"), str) or not given["workflow"].strip():
            raise ValueError("hosted: workflow needs workflow: the workflow's file, e.g. agent.yml")
    return given


def _inputs(given: Mapping[str, Any]) -> dict[str, str]:
    inputs = given.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ValueError("inputs must map the workflow's input names to values")
    if len(inputs) + (PROMPT_INPUT not in inputs) > MAX_WORKFLOW_INPUTS:
        raise ValueError(f"inputs: GitHub takes at most {MAX_WORKFLOW_INPUTS} inputs")
    return {str(k): "" if v is None else str(v) for k, v in inputs.items()}
