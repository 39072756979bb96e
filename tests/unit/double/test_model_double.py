"""The model double answers each model request with the next turn of its script,
as the Anthropic Messages and OpenAI Responses streams, and records what it is asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fakehub.model import ModelDouble

REPO = Path(__file__).resolve().parents[3]
WRITE_HELLO = {"write_file": {"path": "hello.txt", "content": "hi\nthere\n"}}
DONE = {"text": "Done: created hello.txt"}
CLAUDE_TOOLS = [{"name": "Bash", "input_schema": {}}, {"name": "Write", "input_schema": {}}]
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}
SHELL_COMMAND = {"type": "function", "name": "shell_command", "parameters": {}}


@pytest.fixture
def double() -> Iterator[ModelDouble]:
    double = ModelDouble()
    double.start()
    yield double
    double.stop()


def events(response: requests.Response) -> list[tuple[str, dict[str, Any]]]:
    """A server-sent event stream as (event, data) pairs."""
    assert response.headers["Content-Type"].startswith("text/event-stream")
    parsed = []
    for chunk in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def ask_claude(double: ModelDouble | str, **body: Any) -> requests.Response:
    url = double if isinstance(double, str) else double.url
    body = {"model": "claude-x", "messages": [], "tools": CLAUDE_TOOLS, "stream": True, **body}
    headers = {"x-api-key": "sk-ant-double", "anthropic-version": "2023-06-01"}
    return requests.post(f"{url}/v1/messages?beta=true", json=body, headers=headers)


def ask_codex(double: ModelDouble, tools: list[dict[str, Any]]) -> requests.Response:
    body = {"model": "gpt-x", "input": [], "tools": tools, "stream": True}
    return requests.post(f"{double.url}/v1/responses", json=body)


def test_a_file_to_write_comes_to_claude_code_as_a_streamed_write_tool_call(double):
    double.set_script([WRITE_HELLO, DONE])

    streamed = events(ask_claude(double))

    assert [kind for kind, _ in streamed] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == kind for kind, data in streamed)
    started = streamed[0][1]["message"]
    assert started["role"] == "assistant" and started["content"] == []
    assert started["model"] == "claude-x" and started["usage"]["input_tokens"] > 0
    block = streamed[1][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "Write" and block["input"] == {}
    delta = streamed[2][1]["delta"]
    assert delta["type"] == "input_json_delta"
    assert json.loads(delta["partial_json"]) == {"file_path": "hello.txt", "content": "hi\nthere\n"}
    finished = streamed[4][1]
    assert finished["delta"]["stop_reason"] == "tool_use"
    assert finished["usage"]["output_tokens"] > 0
    assert double.turns_left == 1


def test_a_final_text_comes_to_claude_code_as_a_text_delta_ending_the_turn(double):
    double.set_script([DONE])

    streamed = events(ask_claude(double))

    assert streamed[1][1]["content_block"] == {"type": "text", "text": ""}
    assert streamed[2][1]["delta"] == {"type": "text_delta", "text": "Done: created hello.txt"}
    assert streamed[4][1]["delta"]["stop_reason"] == "end_turn"


def test_without_stream_claude_gets_the_whole_message(double):
    double.set_script([{"tool": "Bash", "input": {"command": "ls"}}])

    message = ask_claude(double, stream=False).json()

    assert message["type"] == "message" and message["stop_reason"] == "tool_use"
    [block] = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "Bash"
    assert block["input"] == {"command": "ls"} and block["id"].startswith("toolu_")


def test_a_file_to_write_comes_to_codex_as_its_freeform_apply_patch(double):
    double.set_script([WRITE_HELLO, DONE])

    streamed = events(ask_codex(double, [SHELL_COMMAND, APPLY_PATCH]))

    assert [kind for kind, _ in streamed] == [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in streamed] == [0, 1, 2, 3]
    assert streamed[0][1]["response"]["status"] == "in_progress"
    item = streamed[2][1]["item"]
    assert item["type"] == "custom_tool_call" and item["name"] == "apply_patch"
    assert item["input"] == (
        "*** Begin Patch\n*** Add File: hello.txt\n+hi\n+there\n*** End Patch\n"
    )
    completed = streamed[3][1]["response"]
    assert completed["status"] == "completed" and completed["output"] == [item]
    assert completed["usage"]["total_tokens"] == (
        completed["usage"]["input_tokens"] + completed["usage"]["output_tokens"]
    )


def test_without_apply_patch_codex_writes_the_file_with_its_shell_tool(double, tmp_path):
    double.set_script([{"write_file": {"path": "it's.txt", "content": "a 'quoted' $HOME\n"}}])

    item = events(ask_codex(double, [SHELL_COMMAND]))[2][1]["item"]

    assert item["type"] == "function_call" and item["name"] == "shell_command"
    command = json.loads(item["arguments"])["command"]
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert (tmp_path / "it's.txt").read_text() == "a 'quoted' $HOME\n"


def test_a_final_text_comes_to_codex_as_an_assistant_message(double):
    double.set_script([DONE])

    item = events(ask_codex(double, [APPLY_PATCH]))[2][1]["item"]

    assert item["type"] == "message" and item["role"] == "assistant"
    assert item["content"] == [
        {"type": "output_text", "text": "Done: created hello.txt", "annotations": []}
    ]


def test_every_request_is_recorded_with_its_credentials_and_body(double):
    double.set_script([DONE])

    ask_claude(double, system="be brief")

    [request] = double.requests
    assert request["method"] == "POST" and request["path"] == "/v1/messages"
    assert request["query"] == "beta=true"
    assert request["headers"]["x-api-key"] == "sk-ant-double"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["body"]["system"] == "be brief"
    assert double.mismatches == []


def test_an_unknown_route_is_a_404_recorded_as_a_mismatch(double):
    answered = requests.get(f"{double.url}/v1/models")

    assert answered.status_code == 404
    assert answered.json()["error"]["type"] == "not_found_error"
    [mismatch] = double.mismatches
    assert (mismatch["method"], mismatch["path"], mismatch["status"]) == ("GET", "/v1/models", 404)
    assert double.requests == [{k: v for k, v in mismatch.items() if k not in ("status", "reason")}]


def test_a_request_past_the_end_of_the_script_is_a_400_mismatch(double):
    double.set_script([DONE])
    ask_claude(double)

    answered = ask_claude(double)

    assert answered.status_code == 400
    assert answered.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "the script has no turn left (it had 1)",
        },
    }
    assert [m["reason"] for m in double.mismatches] == ["the script has no turn left (it had 1)"]


def test_a_file_to_write_without_a_tool_that_writes_is_a_mismatch(double):
    double.set_script([WRITE_HELLO])

    answered = ask_codex(double, [{"type": "function", "name": "view_image"}])

    assert answered.status_code == 400
    assert "no tool to write a file with" in double.mismatches[0]["reason"]


def test_another_process_gives_a_script_and_reads_the_requests(double):
    given = requests.post(f"{double.url}/_admin/script", json=[WRITE_HELLO, DONE])
    assert given.json() == {"turns_left": 2}
    ask_codex(double, [APPLY_PATCH])
    requests.get(f"{double.url}/nowhere")

    seen = requests.get(f"{double.url}/_admin/requests").json()

    assert [r["path"] for r in seen["requests"]] == ["/v1/responses", "/nowhere"]
    assert [m["path"] for m in seen["mismatches"]] == ["/nowhere"]
    assert seen["turns_left"] == 1


def test_a_malformed_script_is_refused(double):
    refused = requests.post(f"{double.url}/_admin/script", json=[{"say": "hello"}])

    assert refused.status_code == 400
    assert "each with one of ['text', 'tool', 'write_file']" in refused.json()["message"]
    with pytest.raises(ValueError):
        ModelDouble([{"text": "a", "tool": "Bash"}])


def test_python_m_fakehub_model_serves_a_script_file(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps([DONE]))
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "fakehub.model", "--port", "0", "--script", str(script)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ")[-1].strip()

        assert events(ask_claude(url))[2][1]["delta"]["text"] == "Done: created hello.txt"
        assert requests.get(f"{url}/_admin/requests").json()["turns_left"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
