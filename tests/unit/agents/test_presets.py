"""The presets' command lines and how each CLI's own summary is read back."""

from __future__ import annotations

import json
import shlex

from bot.agents.presets import PRESETS, model_error, summary_of
from bot.agents.profiles import parse_profiles


def words(preset: str, model: str | None = None, args: tuple[str, ...] = ()) -> list[str]:
    return shlex.split(PRESETS[preset].command(model, None, args))


def test_gemini_runs_headless_approving_every_tool_in_a_folder_it_trusts() -> None:
    command = words("gemini", "gemini-2.5-pro")
    # --yolo is deprecated for --approval-mode yolo; without --skip-trust a clone is an
    # untrusted folder, where the approval mode falls back to "default" (every tool refused).
    assert command[:6] == [
        "gemini",
        "--approval-mode",
        "yolo",
        "--skip-trust",
        "--output-format",
        "json",
    ]
    assert command[6:8] == ["-m", "gemini-2.5-pro"]
    assert command[8] == "-p" and "SPECBRIDGE_TASK_FILE" in command[9]
    assert "--yolo" not in command


def test_codex_runs_without_its_plugins() -> None:
    # 0.171.0 otherwise fetches its curated plugins from github.com and chatgpt.com.
    command = words("codex", "gpt-5.5")
    assert command[4:8] == ["codex", "exec", "--json", "--skip-git-repo-check"]  # after its setup
    at = command.index("features.plugins=false")
    assert command[at - 1] == "-c"


def test_the_gemini_summary_is_read_from_its_indented_json() -> None:
    # gemini-cli's JsonFormatter: JSON.stringify(output, null, 2), after whatever it logged.
    document = {
        "session_id": "c74f9993",
        "response": "Created hello.txt.\n\nIt says hi.",
        "stats": {"models": {"gemini-2.5-pro": {"tokens": {"total": 120}}}},
    }
    output = "YOLO mode is enabled. All tool calls will be automatically approved.\n"
    output += json.dumps(document, indent=2) + "\n"

    assert summary_of("gemini", output) == {
        "text": "Created hello.txt.\n\nIt says hi.",
        "turns": None,
        "cost_usd": None,
    }


def test_a_gemini_error_object_is_no_summary() -> None:
    document = {"session_id": "x", "error": {"type": "Error", "message": "401", "code": 401}}

    assert (
        summary_of("gemini", "Error when talking to Gemini API\n" + json.dumps(document, indent=2))
        is None
    )


def test_the_claude_code_summary_is_its_one_line_result() -> None:
    result = {"type": "result", "result": "Done: created hello.txt", "num_turns": 2}
    result["total_cost_usd"] = 0.13
    output = "some warning\n" + json.dumps(result) + "\n"

    assert summary_of("claude-code", output) == {
        "text": "Done: created hello.txt",
        "turns": 2,
        "cost_usd": 0.13,
    }


def test_the_codex_summary_is_its_last_agent_message() -> None:
    events = [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Looking"}},
        {"type": "item.completed", "item": {"type": "file_change", "changes": []}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Done"}},
        {"type": "turn.completed", "usage": {"input_tokens": 3}},
    ]
    output = "Reading additional input from stdin...\n" + "\n".join(map(json.dumps, events))

    assert summary_of("codex", output) == {"text": "Done", "turns": None, "cost_usd": None}


def test_no_summary_in_output_that_holds_none() -> None:
    assert summary_of("claude-code", "Error: something\n{not json") is None
    assert summary_of("codex", "") is None
    assert summary_of("aider", "Applied edit to hello.txt") is None


def test_gemini_gets_the_address_space_its_webassembly_needs(tmp_path) -> None:
    # 0.61.0 stops with "WebAssembly.instantiate(): Out of memory" under RLIMIT_AS 48 GiB.
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        "gemini: {preset: gemini}\n"
        "small: {preset: gemini, address_space: 20G}\n"
        "claude: {preset: claude-code}\n"
    )

    profiles = parse_profiles(agents)

    assert profiles["gemini"].limits.address_space == 64 << 30
    assert profiles["small"].limits.address_space == 20 << 30  # the profile's own wins
    assert profiles["claude"].limits.address_space == 16 << 30  # the sandbox's default


def test_aider_exiting_0_on_a_refused_key_is_said_as_its_model_apis_refusal() -> None:
    # aider 0.86 prints litellm's exception, wrapped to the terminal's width, and exits 0.
    output = (
        "Main model: gpt-4o with diff edit format\n"
        "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect API\n"
        "key provided: sk-test. You can find your API key at\n"
        "https://platform.openai.com/account/api-keys.\n"
        "The API provider is not able to authenticate you. Check your API key.\n"
    )
    said = model_error("aider", output)
    assert said is not None
    assert said.startswith("AuthenticationError: AuthenticationError: OpenAIException - ")
    assert "Incorrect API key provided: sk-test." in said


def test_a_run_that_names_no_model_error_has_none() -> None:
    assert model_error("aider", "Main model: gpt-4o\nApplied edit to hello.py\n") is None
    # Only aider exits 0 on it; the others' refusals end the run with their exit status.
    assert model_error("codex", "litellm.AuthenticationError: no") is None
