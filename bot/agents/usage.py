"""What an agent run used: tokens in and out, cache reads, its cost in USD and its model,
read from the agent CLI's own output, or from the usage file a `command:` profile writes.

Where each CLI says it (the pinned versions of fakehub/agent_cli_packages.json):

- Claude Code, `--output-format json`: one result object with `total_cost_usd`,
  `num_turns`, `usage` (`input_tokens`, `output_tokens`, `cache_read_input_tokens`,
  `cache_creation_input_tokens`) and `modelUsage` keyed by model; `stream-json` ends
  with the same object, its last line.
- Codex, `exec --json`: a `turn.completed` event per turn with `usage`
  (`input_tokens`, of which `cached_input_tokens`, and `output_tokens`); no cost.
- Gemini CLI, `--output-format json`: `stats.models.<model>.tokens` (`input`: the
  prompt's tokens not cached, `prompt`, `cached`, `candidates`, `thoughts`); no cost.
- aider: a line per message, `Tokens: 2.7k sent, 1.2k cache hit, 27 received.
  Cost: $0.0085 message, $0.0085 session.`

Tokens in are those not read from the model's cache (Claude Code's own sense of
`input_tokens`); cache reads are counted apart. Everything here is the agent's text:
hostile. Numbers are checked for type and range; what does not fit is left out, never
guessed.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.agents.presets import json_lines, last_json_object

# The usage file a `command:` profile may write: its name at the top of the clone (the
# one folder of the run's the bot sees after it; never committed).
USAGE_FILE_NAME = ".specbridge-usage.json"
MAX_USAGE_FILE_BYTES = 4096
MAX_TOKENS = 10**12
MAX_COST_USD = 10**6
MAX_MODEL_CHARS = 128
_MODEL = re.compile(r"^[\w.:/@+-]+$")


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    turns: int | None = None
    # The cost is tokens times the profile's price table, not the CLI's own figure.
    estimated: bool = False

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.input_tokens, self.output_tokens, self.cost_usd))

    def priced(self, price: tuple[float, float] | None) -> Usage:
        """With a cost from the price table (USD per million tokens in, out) when the CLI
        gave none and its tokens are known."""
        if self.cost_usd is not None or price is None:
            return self
        if self.input_tokens is None and self.output_tokens is None:
            return self
        cost = ((self.input_tokens or 0) * price[0] + (self.output_tokens or 0) * price[1]) / 1e6
        return replace(self, cost_usd=round(cost, 6), estimated=True)


def usage_of(preset: str | None, output: str) -> Usage:
    """What the preset's CLI said it used, from its output; an empty Usage when it said
    nothing (killed before its result, or a `command:` profile)."""
    if preset == "claude-code":
        return _claude_code(output)
    if preset == "codex":
        return _codex(output)
    if preset == "gemini":
        return _gemini(output)
    if preset == "aider":
        return _aider(output)
    return Usage()


def _claude_code(output: str) -> Usage:
    result = last_json_object(output)
    if result is None or result.get("type") != "result":
        return Usage()
    usage = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    models = result.get("modelUsage") if isinstance(result.get("modelUsage"), dict) else {}
    return Usage(
        input_tokens=_tokens(usage.get("input_tokens")),
        output_tokens=_tokens(usage.get("output_tokens")),
        cache_read_tokens=_tokens(usage.get("cache_read_input_tokens")),
        cost_usd=_cost(result.get("total_cost_usd")),
        model=_model(next(iter(models), None)),
        turns=_tokens(result.get("num_turns")),
    )


def _codex(output: str) -> Usage:
    turns = [
        event["usage"]
        for event in json_lines(output)
        if event.get("type") == "turn.completed" and isinstance(event.get("usage"), dict)
    ]
    if not turns:
        return Usage()
    sent, cached = _sum(turns, "input_tokens"), _sum(turns, "cached_input_tokens")
    return Usage(
        input_tokens=None if sent is None else max(0, sent - (cached or 0)),
        output_tokens=_sum(turns, "output_tokens"),
        cache_read_tokens=cached,
        turns=len(turns),
    )


def _gemini(output: str) -> Usage:
    found = last_json_object(output)
    stats = found.get("stats") if found else None
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict) or not models:
        return Usage()
    tokens = [m["tokens"] for m in models.values() if isinstance(m, dict) and _is_map(m, "tokens")]
    outputs = [_sum(tokens, "candidates"), _sum(tokens, "thoughts")]
    prompt, cached = _sum(tokens, "prompt"), _sum(tokens, "cached")
    uncached = None if prompt is None else max(0, prompt - (cached or 0))
    return Usage(
        input_tokens=_sum(tokens, "input") if uncached is None else uncached,
        output_tokens=None if outputs == [None, None] else sum(o or 0 for o in outputs),
        cache_read_tokens=_sum(tokens, "cached"),
        model=_model(next(iter(models))) if len(models) == 1 else None,
    )


_AIDER_TOKENS = re.compile(r"Tokens: ([\d.]+[kM]?) sent, (.*?)([\d.]+[kM]?) received\.")
_AIDER_CACHE_HIT = re.compile(r"([\d.]+[kM]?) cache hit")
_AIDER_SESSION = re.compile(r"Cost: \$([\d.]+) message, \$([\d.]+) session\.")


def _aider(output: str) -> Usage:
    text = " ".join(output.split())  # aider wraps its lines
    sent = received = hits = 0
    found = False
    for match in _AIDER_TOKENS.finditer(text):
        found = True
        sent += _counted(match[1])
        received += _counted(match[3])
        hit = _AIDER_CACHE_HIT.search(match[2])
        hits += _counted(hit[1]) if hit else 0
    sessions = _AIDER_SESSION.findall(text)
    if not found and not sessions:
        return Usage()
    return Usage(
        input_tokens=_tokens(sent) if found else None,
        output_tokens=_tokens(received) if found else None,
        cache_read_tokens=_tokens(hits) if found else None,
        cost_usd=_cost(float(sessions[-1][1])) if sessions else None,
    )


def _counted(said: str) -> int:
    """aider's rounded counts: 27, 2.7k, 1.2M."""
    scale = {"k": 1_000, "M": 1_000_000}.get(said[-1], 1)
    try:
        return int(float(said.rstrip("kM")) * scale)
    except ValueError:
        return 0


def read_usage_file(folder: Path) -> Usage:
    """The usage file a `command:` profile wrote in `folder` (its clone), checked: a regular
    file (no link followed, the folder's own either), small, JSON with the documented
    keys of the right types. An empty Usage when it is absent or does not fit."""
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return Usage()
    try:
        descriptor = os.open(
            USAGE_FILE_NAME,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY,
            dir_fd=directory,
        )
    except OSError:
        return Usage()
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return Usage()
        raw = os.read(descriptor, MAX_USAGE_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(raw) > MAX_USAGE_FILE_BYTES:
        return Usage()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Usage()
    return usage_from_dict(data)


def usage_from_dict(data: Any) -> Usage:
    """`{"input_tokens", "output_tokens", "cost_usd", "model"}`, each optional; a value of
    the wrong type or out of range is dropped."""
    if not isinstance(data, dict):
        return Usage()
    return Usage(
        input_tokens=_tokens(data.get("input_tokens")),
        output_tokens=_tokens(data.get("output_tokens")),
        cache_read_tokens=_tokens(data.get("cache_read_tokens")),
        cost_usd=_cost(data.get("cost_usd")),
        model=_model(data.get("model")),
    )


def _is_map(value: dict[str, Any], key: str) -> bool:
    return isinstance(value.get(key), dict)


def _sum(items: list[dict[str, Any]], key: str) -> int | None:
    counts = [_tokens(item.get(key)) for item in items]
    known = [c for c in counts if c is not None]
    return _tokens(sum(known)) if known else None


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TOKENS else None


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value <= MAX_COST_USD else None


def _model(value: Any) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_MODEL_CHARS:
        return None
    return value if _MODEL.match(value) else None
