"""What the agent says comes back: each CLI's own summary, read from its output."""

from __future__ import annotations

import json

from bot.agents.presets import summary_of


def test_claude_codes_result_turns_and_cost() -> None:
    output = "some log\n" + json.dumps(
        {
            "type": "result",
            "result": "Done: created hello.txt",
            "num_turns": 3,
            "total_cost_usd": 0.012,
        }
    )
    assert summary_of("claude-code", output) == {
        "text": "Done: created hello.txt",
        "turns": 3,
        "cost_usd": 0.012,
    }


def test_codexs_last_agent_message() -> None:
    events = [
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Looking."}},
        {"type": "item.completed", "item": {"type": "command_execution", "command": "ls"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Done."}},
        {"type": "turn.completed", "usage": {"input_tokens": 10}},
    ]
    output = "\n".join(json.dumps(e) for e in events)
    assert summary_of("codex", output) == {"text": "Done.", "turns": None, "cost_usd": None}


def test_no_summary_when_the_output_holds_none() -> None:
    assert summary_of("claude-code", "Error: no API key\n") is None
    assert summary_of("codex", "") is None
    assert summary_of(None, '{"result": "a command profile says nothing we read"}') is None
