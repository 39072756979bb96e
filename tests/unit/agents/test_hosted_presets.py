"""Hosted presets: `hosted: <agent>` in a profile expands to its way to start, to be
asked for a revision, and to recognise its pull request; wrong settings say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.agents.hosted import (
    MAX_CUSTOM_INSTRUCTIONS,
    MAX_WORKFLOW_INPUTS_CHARS,
    PullRequest,
    copilot_instructions,
    relay_way,
    workflow_inputs,
)
from bot.agents.hosted_presets import PRESETS
from bot.agents.profiles import AgentProfile, Dispatch, parse_profiles
from bot.settings import SettingsError


def _profile(tmp_path: Path, text: str) -> AgentProfile:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return parse_profiles(path)["agent"]


def _dispatch(tmp_path: Path, text: str) -> Dispatch:
    dispatch = _profile(tmp_path, "agent:\n" + text).dispatch
    assert dispatch is not None
    return dispatch


@pytest.mark.parametrize(
    ("text", "start", "revise"),
    [
        ("  hosted: copilot\n", {"assign": "copilot"}, "@copilot {text}"),
        ("  hosted: claude\n", {"assign": "claude"}, "@claude {text}"),
        ("  hosted: codex\n", {"assign": "codex"}, "@codex {text}"),
        ("  hosted: kiro\n", {"label": "kiro"}, "/kiro fix {text}"),
        ("  hosted: openhands\n", {"label": "fix-me"}, "@openhands-agent {text}"),
        # A label override keeps the preset's way to revise.
        (
            "  hosted: openhands\n  label: resolve\n",
            {"label": "resolve"},
            "@openhands-agent {text}",
        ),
        ("  hosted: claude-code-action\n", {"assign": None}, "@claude {text}"),
        ("  hosted: workflow\n  workflow: agent.yml\n", {"workflow": "agent.yml"}, None),
    ],
)
def test_each_preset_expands_to_its_documented_way_to_start_and_to_revise(
    tmp_path: Path, text: str, start: dict[str, str | None], revise: str | None
) -> None:
    dispatch = _dispatch(tmp_path, text)
    for key, value in start.items():
        assert getattr(dispatch, key) == value
    assert dispatch.revise_template == revise
    assert dispatch.spec is PRESETS[text.split()[1]]


def test_claude_code_action_starts_with_an_at_claude_comment(tmp_path: Path) -> None:
    dispatch = _dispatch(tmp_path, "  hosted: claude-code-action\n")
    assert dispatch.comment is not None and dispatch.comment.startswith("@claude ")
    assert dispatch.as_person  # the action ignores other Apps' comments


def test_copilot_takes_its_assignment_settings(tmp_path: Path) -> None:
    dispatch = _dispatch(
        tmp_path,
        "  hosted: copilot\n  custom_agent: tester\n  model: gpt-5\n  base: dev\n"
        "  instructions: Run the tests.\n",
    )
    assert (dispatch.custom_agent, dispatch.model, dispatch.base) == ("tester", "gpt-5", "dev")
    assert dispatch.assignee == "copilot-swe-agent"


def test_a_profiles_own_revise_template_wins(tmp_path: Path) -> None:
    dispatch = _dispatch(tmp_path, '  hosted: kiro\n  revise: "/kiro {text}"\n')
    assert dispatch.revise_template == "/kiro {text}"
    legacy = _dispatch(tmp_path, '  github: {label: fix-me, revise: "@bot {text}"}\n')
    assert legacy.revise_template == "@bot {text}" and not legacy.as_person


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("  hosted: devin\n", "unknown hosted agent 'devin' (known: copilot, claude"),
        ("  hosted: kiro\n  custom_agent: x\n", "hosted: kiro takes no 'custom_agent'"),
        ("  hosted: copilot\n  workflow: a.yml\n", "hosted: copilot takes no 'workflow'"),
        ("  hosted: workflow\n", "hosted: workflow needs workflow: the workflow's file"),
        ("  hosted: workflow\n  workflow: a.yml\n  inputs: [x]\n", "inputs must map"),
        ("  hosted: copilot\n  model: ''\n", "model must be a non-empty string"),
        ("  hosted: kiro\n  revise: fix it\n", "revise must say where the request goes"),
        ("  hosted: kiro\n  github: {label: x}\n", "has both hosted and github"),
        ("  hosted: kiro\n  command: x\n", "needs one of preset, command, hosted or github"),
        ("  command: x\n  label: y\n", "label applies to a hosted: agent only"),
    ],
)
def test_wrong_settings_say_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(SettingsError, match="profile 'agent': ") as raised:
        _profile(tmp_path, "agent:\n" + text)
    assert error in str(raised.value)


def test_too_many_workflow_inputs_are_refused(tmp_path: Path) -> None:
    inputs = "{" + ", ".join(f"i{n}: v" for n in range(25)) + "}"
    with pytest.raises(SettingsError, match="at most 25 inputs"):
        _profile(tmp_path, f"agent:\n  hosted: workflow\n  workflow: a.yml\n  inputs: {inputs}\n")


def test_workflow_inputs_carry_the_prompt_and_the_issue(tmp_path: Path) -> None:
    plain = _dispatch(tmp_path, "  hosted: workflow\n  workflow: a.yml\n  inputs: {effort: 3}\n")
    assert workflow_inputs(plain, "Do it", 7) == {"effort": "3", "prompt": "Do it"}
    named = _dispatch(
        tmp_path,
        '  hosted: workflow\n  workflow: a.yml\n  inputs: {task: "{prompt}", issue: "#{issue}"}\n',
    )
    assert workflow_inputs(named, "Do it", 7) == {"task": "Do it", "issue": "#7"}


def test_a_long_prompt_is_cut_to_what_github_takes(tmp_path: Path) -> None:
    dispatch = _dispatch(tmp_path, "  hosted: workflow\n  workflow: a.yml\n")
    prompt = 'line "quoted"\n' * 10_000
    inputs = workflow_inputs(dispatch, prompt, 7)
    assert len(json.dumps(inputs, ensure_ascii=False)) <= MAX_WORKFLOW_INPUTS_CHARS
    assert inputs["prompt"].startswith('line "quoted"\n')
    assert inputs["prompt"].endswith("the issue has the rest)")

    copilot = _dispatch(tmp_path, "  hosted: copilot\n  instructions: Be brief.\n")
    told = copilot_instructions(copilot, 7, "x" * 100_000)
    assert len(told) == MAX_CUSTOM_INSTRUCTIONS and told.startswith("Be brief.\n\n")
    assert "`Fixes #7`" in told


def _pull(author: str, head: str) -> PullRequest:
    return PullRequest(1, "opened", True, False, "open", "Fixes #2", head, author)


def test_a_pull_request_is_recognised_by_its_author_or_its_branch(tmp_path: Path) -> None:
    copilot = _dispatch(tmp_path, "  hosted: copilot\n")
    assert _pull("Copilot", "feature/x").opened_by(copilot)
    assert _pull("someone", "copilot/fix-2").opened_by(copilot)
    assert not _pull("someone", "feature/fix-2").opened_by(copilot)
    kiro = _dispatch(tmp_path, "  hosted: kiro\n")
    assert not _pull("someone", "feature/fix-2").opened_by(kiro)  # Kiro names neither
    assert not _pull("someone", "x").opened_by(None)


def test_the_reply_says_how_the_agent_is_asked(tmp_path: Path) -> None:
    assert relay_way(_dispatch(tmp_path, "  hosted: kiro\n")) == (
        "a comment `/kiro fix …` on its pull request"
    )
    workflow = _dispatch(tmp_path, "  hosted: workflow\n  workflow: a.yml\n")
    assert relay_way(workflow) == "a new run of `a.yml` told the request"


def test_the_documentation_shows_every_preset_and_where_it_is_documented() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "hosted-agents.md").read_text()
    for preset in PRESETS.values():
        assert f"| `{preset.name}` |" in docs
        assert preset.docs in docs
