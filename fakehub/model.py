"""A model double: the Anthropic Messages API as Claude Code calls it, and the
OpenAI Responses API as Codex calls it, each model request answered with the
next turn of a script.

A script is a list of turns, each one of:
- `{"write_file": {"path": P, "content": C}}`: the call of a tool that writes
  the file, in the dialect of the tools the request offers (Claude Code's
  `Write`; Codex's `apply_patch`, else its shell tool);
- `{"tool": NAME, "input": {...}}`: one tool call as is (for Codex, a string
  input calls a freeform tool, such as its `apply_patch`);
- `{"text": T}`: a final answer, which ends the agent's run.

    python -m fakehub.model --port 8901 --script script.json [--verbose]

Every request is recorded (`double.requests`: method, path, query, some
headers, the JSON body). An unknown route is a 404, a request past the end of
the script or one whose tools cannot do the turn a 400, each in the API's error
shape and recorded in `double.mismatches`. Another process reads both with
`GET /_admin/requests` and gives a new script with `POST /_admin/script`.
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

Turn = dict[str, Any]
Event = tuple[str, dict[str, Any]]

# Headers worth asserting on (credentials, API versions and betas, the client).
RECORDED_HEADERS = {
    "accept",
    "anthropic-beta",
    "anthropic-version",
    "authorization",
    "content-type",
    "openai-beta",
    "originator",
    "user-agent",
    "x-api-key",
}

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):024d}"


def checked(script: Any) -> list[Turn]:
    kinds = {"text", "write_file", "tool"}
    if not isinstance(script, list) or not all(
        isinstance(turn, dict) and len(kinds & turn.keys()) == 1 for turn in script
    ):
        raise ValueError(f"a script is a list of turns, each with one of {sorted(kinds)}")
    return list(script)


class Unanswerable(Exception):
    """The script cannot answer this request: a mismatch."""


class ModelDouble:
    def __init__(self, script: list[Turn] | None = None, verbose: bool = False) -> None:
        self.script = checked(script or [])
        self.requests: list[dict[str, Any]] = []
        self.mismatches: list[dict[str, Any]] = []
        self.verbose = verbose
        self._answered = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self.url = ""

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, self._wsgi, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def set_script(self, script: list[Turn]) -> None:
        with self._lock:
            self.script, self._answered = checked(script), 0

    @property
    def turns_left(self) -> int:
        return len(self.script) - self._answered

    # -- requests ----------------------------------------------------------------------

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        record = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode(),
            "headers": {
                k.lower(): v for k, v in request.headers.items() if k.lower() in RECORDED_HEADERS
            },
            "body": body,
        }
        if request.path.startswith("/_admin/"):
            return self._admin(request.method, request.path, body)
        with self._lock:
            self.requests.append(record)
        if self.verbose:
            print(json.dumps(record), file=sys.stderr, flush=True)
        answer = {"/v1/messages": self._messages, "/v1/responses": self._responses}.get(
            request.path
        )
        if request.method != "POST" or answer is None:
            return self._mismatch(
                record, 404, "not_found_error", "no such route in the model double"
            )
        try:
            return answer(body or {})
        except Unanswerable as refused:
            return self._mismatch(record, 400, "invalid_request_error", str(refused))

    def _mismatch(self, record: dict[str, Any], status: int, kind: str, reason: str) -> Response:
        with self._lock:
            self.mismatches.append({**record, "status": status, "reason": reason})
        return _json({"type": "error", "error": {"type": kind, "message": reason}}, status)

    def _admin(self, method: str, path: str, body: Any) -> Response:
        if (method, path) == ("GET", "/_admin/requests"):
            return _json(
                {
                    "requests": self.requests,
                    "mismatches": self.mismatches,
                    "turns_left": self.turns_left,
                }
            )
        if (method, path) == ("POST", "/_admin/script"):
            try:
                self.set_script(body)
            except ValueError as wrong:
                return _json({"message": str(wrong)}, 400)
            return _json({"turns_left": self.turns_left})
        return _json({"message": "Not Found"}, 404)

    def _next_turn(self) -> Turn:
        with self._lock:
            if self._answered >= len(self.script):
                raise Unanswerable(f"the script has no turn left (it had {len(self.script)})")
            self._answered += 1
            return self.script[self._answered - 1]

    # -- Anthropic Messages: POST /v1/messages ----------------------------------------------

    def _messages(self, body: dict[str, Any]) -> Response:
        content = [_anthropic_block(self._next_turn(), body)]
        message = {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": "tool_use" if content[0]["type"] == "tool_use" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": _tokens(body), "output_tokens": _tokens(content)},
        }
        return _sse(_anthropic_events(message)) if body.get("stream") else _json(message)

    # -- OpenAI Responses: POST /v1/responses -------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> Response:
        output = [_openai_item(self._next_turn(), body)]
        response = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model"),
            "output": output,
            "usage": {
                "input_tokens": _tokens(body),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": _tokens(output),
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": _tokens(body) + _tokens(output),
            },
        }
        return _sse(_openai_events(response)) if body.get("stream") else _json(response)


# -- a turn as Anthropic content ------------------------------------------------------------


def _offered(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's tools by name."""
    return {tool["name"]: tool for tool in body.get("tools") or [] if "name" in tool}


def _anthropic_block(turn: Turn, body: dict[str, Any]) -> dict[str, Any]:
    if "text" in turn:
        return {"type": "text", "text": turn["text"]}
    if "write_file" in turn:
        if "Write" not in _offered(body):
            raise Unanswerable("the request offers no Write tool to write a file with")
        write = turn["write_file"]
        name, tool_input = "Write", {"file_path": write["path"], "content": write["content"]}
    else:
        name, tool_input = turn["tool"], turn.get("input", {})
    return {"type": "tool_use", "id": new_id("toolu"), "name": name, "input": tool_input}


def _anthropic_events(message: dict[str, Any]) -> Iterator[Event]:
    """The stream of https://docs.anthropic.com/en/api/messages-streaming."""
    usage = message["usage"]
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": started}
    for index, block in enumerate(message["content"]):
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


# -- a turn as an OpenAI output item ---------------------------------------------------------


def _openai_item(turn: Turn, body: dict[str, Any]) -> dict[str, Any]:
    if "text" in turn:
        content = [{"type": "output_text", "text": turn["text"], "annotations": []}]
        return {
            "type": "message",
            "id": new_id("msg"),
            "role": "assistant",
            "status": "completed",
            "content": content,
        }
    name, tool_input = (
        _codex_write(turn["write_file"], body)
        if "write_file" in turn
        else (turn["tool"], turn.get("input", {}))
    )
    if isinstance(tool_input, str):  # a freeform (custom) tool takes its input as text
        return {
            "type": "custom_tool_call",
            "id": new_id("ctc"),
            "call_id": new_id("call"),
            "name": name,
            "input": tool_input,
            "status": "completed",
        }
    return {
        "type": "function_call",
        "id": new_id("fc"),
        "call_id": new_id("call"),
        "name": name,
        "arguments": json.dumps(tool_input),
        "status": "completed",
    }


def _codex_write(write: dict[str, str], body: dict[str, Any]) -> tuple[str, Any]:
    """Writing a file with the first of Codex's tools the request offers."""
    offered = _offered(body)
    path, content = write["path"], write["content"]
    if "apply_patch" in offered:
        lines = "".join(f"+{line}\n" for line in content.splitlines())
        patch = f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n"
        freeform = offered["apply_patch"].get("type") == "custom"
        return "apply_patch", patch if freeform else {"input": patch}
    command = f"printf %s {shlex.quote(content)} > {shlex.quote(path)}"
    if "shell_command" in offered:
        return "shell_command", {"command": command}
    if "exec_command" in offered:
        return "exec_command", {"cmd": command}
    if "shell" in offered:
        return "shell", {"command": ["bash", "-lc", command]}
    raise Unanswerable(f"the request offers no tool to write a file with: {sorted(offered)}")


def _openai_events(response: dict[str, Any]) -> Iterator[Event]:
    """The stream of https://platform.openai.com/docs/api-reference/responses-streaming."""
    number = itertools.count()
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield (
        "response.created",
        {"type": "response.created", "sequence_number": next(number), "response": started},
    )
    for index, item in enumerate(response["output"]):
        for kind in ("response.output_item.added", "response.output_item.done"):
            yield (
                kind,
                {
                    "type": kind,
                    "sequence_number": next(number),
                    "output_index": index,
                    "item": item,
                },
            )
    yield (
        "response.completed",
        {"type": "response.completed", "sequence_number": next(number), "response": response},
    )


# -- HTTP -------------------------------------------------------------------------------------


def _tokens(value: Any) -> int:
    """A stand-in token count: about four characters a token."""
    return max(1, len(json.dumps(value)) // 4)


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status, content_type="application/json")


def _sse(events: Iterator[Event]) -> Response:
    chunks = (f"event: {kind}\ndata: {json.dumps(data)}\n\n" for kind, data in events)
    return Response(
        chunks, 200, content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fakehub.model")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--script", type=Path, help="a JSON list of turns")
    parser.add_argument("--verbose", action="store_true", help="print every request on stderr")
    args = parser.parse_args()
    script = json.loads(args.script.read_text()) if args.script else []
    double = ModelDouble(script, verbose=args.verbose)
    print(f"model double on {double.start(args.port, args.host)}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
