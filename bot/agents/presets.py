"""The coding agent CLIs teams use, run unattended: each preset is that CLI's
documented non-interactive invocation, the API key it needs, the one host it
talks to, and how its own summary is read back from its output.

The prompt is the task file (bot/agents/prompt.py), given as the CLI's prompt
argument. The flags, and where each comes from:

- claude-code (`@anthropic-ai/claude-code`), https://code.claude.com/docs/en/headless
  and /cli-reference: `-p` print mode, `--output-format json` (one object whose
  `result` is the final message, with `num_turns` and `total_cost_usd`),
  `--permission-mode bypassPermissions` (edits and commands without asking:
  the sandbox is the boundary), `--setting-sources user` (the repository's own
  .claude/settings.json hooks do not run), `--model`, `--max-turns`.
  https://code.claude.com/docs/en/env-vars: CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC,
  DISABLE_AUTOUPDATER; IS_SANDBOX=1 says the run is contained (bypassPermissions
  refuses root otherwise).
- codex (`@openai/codex`), https://developers.openai.com/codex/noninteractive:
  `codex exec --json` (JSON Lines; the last `item.completed` of type
  `agent_message` is the final message), `--skip-git-repo-check`,
  `--dangerously-bypass-approvals-and-sandbox` (its own Linux sandbox cannot
  nest in ours; ours contains it), `-m`; its settings under CODEX_HOME.
  https://developers.openai.com/codex/config-reference: `-c key=value`;
  `features.plugins=false` (a `[features]` flag, on by default in `codex features
  list`; https://github.com/openai/codex/issues/43571 calls it the one switch
  that stops plugins): without it 0.171.0 reaches for its curated plugins on
  github.com, api.github.com and chatgpt.com at every start, which the egress
  proxy refuses.
- aider (`aider-chat`), https://aider.chat/docs/scripting.html and /config/options.html:
  `--message-file`, `--yes-always`, `--no-auto-commits` (specbridge commits),
  `--no-check-update`, `--no-analytics`, `--no-pretty`, `--no-stream`, `--model`,
  `--no-gitignore` (it would add `.aider*` to the repository's .gitignore, a change
  specbridge would commit). Its chat history and tags cache (`.aider.chat.history.md`,
  `.aider.tags.cache.v4/`) are written in the clone all the same: the preset's
  `ignore` keeps `.aider*` out of what specbridge commits (its repository's
  info/exclude, and the agent's own).
- gemini (`@google/gemini-cli`), https://github.com/google-gemini/gemini-cli
  docs/cli/headless.md: `-p` (headless), `--output-format json` (one object,
  printed indented over many lines, whose `response` is the final message), `-m`;
  docs/cli/cli-reference.md: `--approval-mode yolo` (approve every tool call;
  `--yolo` is deprecated); docs/cli/trusted-folders.md, "Headless and automated
  environments": `--skip-trust`, without which a folder it has not been told to
  trust (every clone) overrides the approval mode to "default", and a headless
  run then has every tool call refused.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The task file as one argument (shell, in the sandbox).
PROMPT = '"$(cat "$SPECBRIDGE_TASK_FILE")"'


@dataclass(frozen=True)
class Preset:
    name: str
    program: str
    flags: tuple[str, ...]
    model_flag: str | None
    turns_flag: str | None
    prompt: str  # how the task file is given, as shell words
    key: str | None  # the API key variable it reads
    hosts: tuple[str, ...]  # its model API
    env: dict[str, str] = field(default_factory=dict)
    setup: str = ""  # shell run before it, in the sandbox
    limits: dict[str, str] = field(default_factory=dict)  # the sandbox's, unless the profile's
    ignore: tuple[str, ...] = ()  # what it writes in the clone that is never committed

    def command(self, model: str | None, max_turns: int | None, args: Sequence[str]) -> str:
        """The shell command line for this profile; the prompt is the task file."""
        words = [self.program, *self.flags]
        if model and self.model_flag:
            words += [self.model_flag, model]
        if max_turns and self.turns_flag:
            words += [self.turns_flag, str(max_turns)]
        words += list(args)
        line = f"{shlex.join(words)} {self.prompt}"
        return f"{self.setup} && {line}" if self.setup else line


PRESETS = {
    "claude-code": Preset(
        name="claude-code",
        program="claude",
        flags=(
            "--output-format",
            "json",
            "--permission-mode",
            "bypassPermissions",
            "--setting-sources",
            "user",
        ),
        model_flag="--model",
        turns_flag="--max-turns",
        prompt=f"-p {PROMPT}",
        key="ANTHROPIC_API_KEY",
        hosts=("api.anthropic.com:443",),
        env={
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",
        },
    ),
    "codex": Preset(
        name="codex",
        program="codex",
        flags=(
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-c",
            "analytics.enabled=false",
            "-c",
            "check_for_update_on_startup=false",
            "-c",
            "features.plugins=false",
        ),
        model_flag="-m",
        turns_flag=None,
        prompt=PROMPT,
        key="OPENAI_API_KEY",
        hosts=("api.openai.com:443",),
        env={"CODEX_HOME": "/home/agent/.codex"},
        setup='mkdir -p "$CODEX_HOME"',
    ),
    "aider": Preset(
        name="aider",
        program="aider",
        flags=(
            "--yes-always",
            "--no-auto-commits",
            "--no-check-update",
            "--no-analytics",
            "--no-pretty",
            "--no-stream",
            "--no-show-release-notes",
            "--no-gitignore",
        ),
        model_flag="--model",
        turns_flag=None,
        prompt='--message-file "$SPECBRIDGE_TASK_FILE"',
        key=None,  # it reads whichever key its model needs: name it in env_from
        hosts=("api.anthropic.com:443", "api.openai.com:443"),
        ignore=(".aider*",),
    ),
    "gemini": Preset(
        name="gemini",
        program="gemini",
        flags=("--approval-mode", "yolo", "--skip-trust", "--output-format", "json"),
        model_flag="-m",
        turns_flag=None,
        prompt=f"-p {PROMPT}",
        key="GEMINI_API_KEY",
        hosts=("generativelanguage.googleapis.com:443",),
        # Node reserves ~10 GiB of address space per WebAssembly memory, and 0.61.0
        # makes several before its first request: under 48 GiB (RLIMIT_AS) it stops
        # with "RangeError: WebAssembly.instantiate(): Out of memory".
        limits={"address_space": "64G"},
    ),
}


def summary_of(preset: str | None, output: str) -> dict[str, Any] | None:
    """The agent's own account of its run, from its output: `text`, and `turns` and
    `cost_usd` where the CLI says them. None when the output holds none."""
    if preset in ("claude-code", "gemini"):
        found = last_json_object(output)
        if found is None:
            return None
        text = found.get("result") if preset == "claude-code" else found.get("response")
        if not isinstance(text, str):
            return None
        return {
            "text": text,
            "turns": found.get("num_turns"),
            "cost_usd": found.get("total_cost_usd"),
        }
    if preset == "codex":
        messages = [
            event["item"].get("text", "")
            for event in json_lines(output)
            if event.get("type") == "item.completed"
            and (event.get("item") or {}).get("type") == "agent_message"
        ]
        return {"text": messages[-1], "turns": None, "cost_usd": None} if messages else None
    return None


# aider reports its model's refusals (a bad key, an unknown model) as litellm's
# exceptions, one a line, and exits 0 all the same.
_AIDER_MODEL_ERROR = re.compile(r"litellm\.(\w+Error): *(.*)")


def model_error(preset: str | None, output: str) -> str | None:
    """What the CLI said its model API refused, for a run that changed nothing;
    None when it said nothing of the kind."""
    if preset != "aider":
        return None  # the others exit non-zero on it, and say it in their output
    found = _AIDER_MODEL_ERROR.search(" ".join(output.split()))  # aider wraps its lines
    if found is None:
        return None
    name, said = found.groups()
    return f"{name}: {said[:300]}"


def last_json_object(output: str) -> dict[str, Any] | None:
    """The last JSON object of the output that starts a line: on one line (Claude
    Code) or indented over many (Gemini CLI); what the CLI logged around it is skipped."""
    lines = output.splitlines(keepends=True)
    decoder = json.JSONDecoder()
    for start in reversed(range(len(lines))):
        if not lines[start].startswith("{"):
            continue
        try:
            found, _ = decoder.raw_decode("".join(lines[start:]))
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    return None


def json_lines(output: str) -> list[dict[str, Any]]:
    events = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
