"""Usage read from the real output of each agent CLI, and from a command's usage file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.agents.usage import USAGE_FILE_NAME, Usage, read_usage_file, usage_of

FIXTURES = Path(__file__).parent / "fixtures" / "usage"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_claude_code_result_gives_its_own_cost_tokens_and_model():
    usage = usage_of("claude-code", fixture("claude-code.json"))

    assert usage == Usage(
        input_tokens=44672,
        output_tokens=51,
        cache_read_tokens=0,
        cost_usd=pytest.approx(0.134781),
        model="claude-sonnet-4-5",
        turns=2,
    )


def test_claude_code_stream_json_ends_with_the_same_result():
    events = [{"type": "system", "subtype": "init"}, {"type": "assistant", "message": {}}]
    stream = "\n".join(json.dumps(e) for e in events) + "\n" + fixture("claude-code.json")

    assert usage_of("claude-code", stream).cost_usd == pytest.approx(0.134781)


def test_codex_sums_its_turns_usage_and_gives_no_cost():
    once = fixture("codex.jsonl")
    twice = once + once.split("\n", 1)[1]  # a second turn, as a resumed thread prints

    assert usage_of("codex", once) == Usage(
        input_tokens=19394, output_tokens=109, cache_read_tokens=0, turns=1
    )
    assert usage_of("codex", twice).input_tokens == 2 * 19394


def test_gemini_stats_give_prompt_candidates_and_cached_tokens():
    usage = usage_of("gemini", fixture("gemini.json"))

    assert usage == Usage(
        input_tokens=5120 - 4096,  # the prompt's tokens not read from the cache
        output_tokens=7 + 30,  # its answer and its thoughts are both billed as output
        cache_read_tokens=4096,
        model="gemini-2.5-pro",
    )


def test_codex_cached_tokens_are_counted_apart_from_those_sent():
    event = {
        "type": "turn.completed",
        "usage": {"input_tokens": 900, "cached_input_tokens": 600, "output_tokens": 5},
    }

    usage = usage_of("codex", json.dumps(event))

    assert (usage.input_tokens, usage.cache_read_tokens) == (300, 600)


def test_aider_printed_tokens_and_session_cost():
    usage = usage_of("aider", fixture("aider.txt"))

    assert usage == Usage(input_tokens=2700, output_tokens=27, cache_read_tokens=0, cost_usd=0.0085)


def test_aider_messages_add_up_and_the_last_session_cost_is_the_run():
    printed = (
        "Tokens: 2.7k sent, 1.2k cache hit, 27 received. Cost: $0.0085 message, $0.0085 "
        "session.\nTokens: 1.1M sent, 3k received. Cost: $3.40 message, $3.41 session.\n"
    )

    usage = usage_of("aider", printed)

    assert (usage.input_tokens, usage.output_tokens) == (1_102_700, 3027)
    assert usage.cache_read_tokens == 1200
    assert usage.cost_usd == 3.41


def test_a_run_killed_before_its_result_says_nothing():
    assert not usage_of("claude-code", "partial output\n").known
    assert not usage_of("codex", '{"type":"turn.started"}\n').known
    assert not usage_of(None, "anything").known


def test_the_price_table_costs_tokens_when_the_cli_gives_no_cost():
    usage = usage_of("codex", fixture("codex.jsonl")).priced((3.0, 15.0))

    assert usage.cost_usd == pytest.approx((19394 * 3.0 + 109 * 15.0) / 1e6)
    assert usage.estimated
    own = usage_of("claude-code", fixture("claude-code.json")).priced((3.0, 15.0))
    assert own.cost_usd == pytest.approx(0.134781) and not own.estimated


def write(home: Path, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    (home / USAGE_FILE_NAME).write_bytes(data)


def test_usage_file_of_a_command_profile(tmp_path):
    write(
        tmp_path,
        json.dumps(
            {"input_tokens": 1200, "output_tokens": 300, "cost_usd": 1.25, "model": "my-model"}
        ),
    )

    assert read_usage_file(tmp_path) == Usage(
        input_tokens=1200, output_tokens=300, cost_usd=1.25, model="my-model"
    )


@pytest.mark.parametrize(
    "content",
    [
        '{"input_tokens": "1200", "output_tokens": true, "cost_usd": -1, "model": "a b\\n"}',
        '{"input_tokens": 1e400, "cost_usd": NaN}',
        '{"input_tokens": 10000000000000000}',
        "[1, 2]",
        "not json",
        b"\xff\xfe",
        '{"model": "' + "x" * 50 + '", "pad": "' + "y" * 5000 + '"}',
        "[" * 100_000,
    ],
)
def test_usage_file_values_that_do_not_fit_are_dropped(tmp_path, content):
    write(tmp_path, content)

    assert not read_usage_file(tmp_path).known


def test_usage_file_is_not_read_through_a_link(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"input_tokens": 5, "cost_usd": 9.0}')
    home = tmp_path / "home"
    home.mkdir()
    (home / USAGE_FILE_NAME).symlink_to(secret)
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside, '{"input_tokens": 5, "cost_usd": 9.0}')
    linked_home = tmp_path / "linked-home"
    linked_home.symlink_to(outside)

    assert read_usage_file(home) == Usage()
    assert read_usage_file(linked_home) == Usage()


def test_usage_file_that_is_a_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / USAGE_FILE_NAME)

    assert read_usage_file(tmp_path) == Usage()


def test_no_usage_file(tmp_path):
    assert read_usage_file(tmp_path / "absent") == Usage()
    assert read_usage_file(tmp_path) == Usage()
