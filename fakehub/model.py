"""A model double: the Anthropic Messages API as Claude Code calls it, and the
OpenAI Responses API as Codex calls it, each agent request answered with the
next turn of a script.

A script is a list of turns, each one of:
- `{"write_file": {"path": P, "content": C}}`: the tool call that writes a file,
  in the tool the request offers (Claude Code's `Write`; Codex's `apply_patch`,
  else its `shell`);
- `{"tool": NAME, "input": {...}}`: any one tool call, as is;
- `{"text": T}`: the final answer, which ends the agent's run.

    python -m fakehub.model --port 8901 --script script.json

Every request is recorded (`double.requests`); an unknown route is a 404 and a
request past the end of the script a 400, each recorded in `double.mismatches`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# Headers worth asserting on; the rest (lengths, user agents' noise) is left out.
RECORDED_HEADERS = (
    "anthropic-version",
    "anthropic-beta",
    "authorization",
    "x-api-key",
    "content-type",
    "accept",
    "user-agent",
    "originator",
    "session_id",
    "openai-beta",
)

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):024d}"


class ModelDouble:
    def __init__(self, script: list[dict[str, Any]] | None = None, verbose: bool = False) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.mismatches: list[dict[str, Any]] = []
        self.verbose = verbose
        self._turn = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self.url = ""

    # -- running -----------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, self._wsgi, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def turns_left(self) -> int:
        return len(self.script) - self._turn

    # -- requests ----------------------------------------------------------------------

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        record = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode(),
            "headers": {k: v for k, v in request.headers.items() if k.lower() in RECORDED_HEADERS},
            "body": body,
        }
        with self._lock:
            self.requests.append(record)
        if self.verbose:
            print(json.dumps(record), file=sys.stderr, flush=True)
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/v1/messages"):
            return self._messages(body or {})
        if route == ("POST", "/v1/messages/count_tokens"):
            return _json({"input_tokens": _tokens(body)})
        if route == ("POST", "/v1/responses"):
            return self._responses(body or {})
        return self._mismatch(record, 404, "no such route in the model double")

    def _mismatch(self, record: dict[str, Any], status: int, reason: str) -> Response:
        with self._lock:
            self.mismatches.append({**record, "status": status, "reason": reason})
        error = {"type": "not_found_error" if status == 404 else "invalid_request_error"}
        return _json({"type": "error", "error": {**error, "message": reason}}, status)

    def _next_turn(self) -> dict[str, Any] | None:
        with self._lock:
            if self._turn >= len(self.script):
                return None
            self._turn += 1
            return self.script[self._turn - 1]

    # -- Anthropic Messages ---------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> Response:
        turn = self._next_turn()
        if turn is None:
            return self._mismatch(self.requests[-1], 400, "the script has no turn left")
        content = _anthropic_content(turn, body)
        stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
        message = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-double"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": _tokens(body), "output_tokens": _tokens(content)},
        }
        if not body.get("stream"):
            return _json(message)
        return _sse(_anthropic_events(message))

    # -- OpenAI Responses -------------------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> Response:
        turn = self._next_turn()
        if turn is None:
            return self._mismatch(self.requests[-1], 400, "the script has no turn left")
        output = _openai_output(turn, body)
        response = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model", "gpt-double"),
            "output": output,
            "usage": {
                "input_tokens": _tokens(body),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": _tokens(output),
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": _tokens(body) + _tokens(output),
            },
        }
        if not body.get("stream"):
            return _json(response)
        return _sse(_openai_events(response))


# -- turns as each API's content ---------------------------------------------------------------


def _tool_names(body: dict[str, Any]) -> list[str]:
    return [
        tool.get("name") or tool.get("function", {}).get("name") for tool in body.get("tools") or []
    ]


def _anthropic_content(turn: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    if "text" in turn:
        return [{"type": "text", "text": turn["text"]}]
    if "write_file" in turn:
        name, tool_input = (
            "Write",
            {
                "file_path": turn["write_file"]["path"],
                "content": turn["write_file"]["content"],
            },
        )
    else:
        name, tool_input = turn["tool"], turn.get("input", {})
    return [{"type": "tool_use", "id": new_id("toolu"), "name": name, "input": tool_input}]


def _anthropic_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    content, usage = message["content"], message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(content):
        if block["type"] == "text":
            empty, delta = {**block, "text": ""}, {"type": "text_delta", "text": block["text"]}
        else:
            empty = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": empty},
        )
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _openai_output(turn: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    if "text" in turn:
        return [
            {
                "type": "message",
                "id": new_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": turn["text"], "annotations": []}],
            }
        ]
    if "write_file" in turn:
        path, content = turn["write_file"]["path"], turn["write_file"]["content"]
        if "shell" in _tool_names(body):
            command = f"printf %s {shlex.quote(content)} > {shlex.quote(path)}"
            name, arguments = "shell", {"command": ["bash", "-lc", command]}
        else:
            name, arguments = "shell", {"command": ["bash", "-lc", "true"]}
    else:
        name, arguments = turn["tool"], turn.get("input", {})
    return [
        {
            "type": "function_call",
            "id": new_id("fc"),
            "call_id": new_id("call"),
            "name": name,
            "arguments": json.dumps(arguments),
            "status": "completed",
        }
    ]


def _openai_events(response: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    sequence = itertools.count()
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield (
        "response.created",
        {"type": "response.created", "sequence_number": next(sequence), "response": started},
    )
    for index, item in enumerate(response["output"]):
        for kind in ("response.output_item.added", "response.output_item.done"):
            yield (
                kind,
                {
                    "type": kind,
                    "sequence_number": next(sequence),
                    "output_index": index,
                    "item": item,
                },
            )
    yield (
        "response.completed",
        {
            "type": "response.completed",
            "sequence_number": next(sequence),
            "response": response,
        },
    )


# -- HTTP -------------------------------------------------------------------------------------


def _tokens(value: Any) -> int:
    """A stand-in token count: about four characters a token."""
    return max(1, len(json.dumps(value)) // 4)


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status, content_type="application/json")


def _sse(events: Iterator[tuple[str, dict[str, Any]]]) -> Response:
    chunks = (f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in events)
    return Response(
        chunks, 200, content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fakehub.model")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--script", type=Path, help="a JSON list of turns")
    parser.add_argument("--verbose", action="store_true", help="print every request")
    args = parser.parse_args()
    script = json.loads(args.script.read_text()) if args.script else []
    double = ModelDouble(script, verbose=args.verbose)
    print(f"model double on {double.start(args.port, args.host)}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
