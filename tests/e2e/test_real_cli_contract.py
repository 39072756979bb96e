"""The real coding agents' CLIs, installed from npm at the pinned versions, run
unattended as a preset runs them, against the model double: each writes the
file the scripted model asks for and reports the model's final message.

Skipped only when npm is not on PATH; a CLI that will not install fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fakehub.agent_clis import agent_cli
from fakehub.model import ModelDouble

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.heavy,  # 1.6 GB of agent CLIs on the first run
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm installs the agents' CLIs"),
]

PROMPT = "Create hello.txt containing one line: hi from the agent."
FINAL = "Done: created hello.txt"
CLAUDE_MODEL = "claude-sonnet-4-5"
CODEX_MODEL = "gpt-5.5"  # in Codex's own model catalog: it offers its apply_patch tool
RUN_TIMEOUT_SECONDS = 300


def claude_code(program: Path, model_url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    """Claude Code in print mode (https://code.claude.com/docs/en/headless,
    https://code.claude.com/docs/en/cli-reference, https://code.claude.com/docs/en/env-vars)."""
    argv = [
        str(program),
        "-p",
        PROMPT,
        "--output-format",
        "json",
        # Every tool without asking: the outer sandbox is the boundary. acceptEdits would
        # let Write and Edit through but deny Bash commands in print mode.
        "--permission-mode",
        "bypassPermissions",
        "--model",
        CLAUDE_MODEL,
        "--max-turns",
        "10",
        # Only the (fresh) user settings: print mode skips the workspace trust dialog, so
        # the repository's own .claude/settings.json, hooks included, would apply.
        "--setting-sources",
        "user",
    ]
    environment = {
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "sk-ant-model-double",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    if os.geteuid() == 0:
        # As root, bypassPermissions refuses to start unless told it is in a sandbox
        # (undocumented: https://github.com/anthropics/claude-code/issues/3490).
        environment["IS_SANDBOX"] = "1"
    return argv, base_environment(home) | environment


def codex(
    program: Path, model_url: str, home: Path, sandbox: list[str]
) -> tuple[list[str], dict[str, str]]:
    """Codex's exec mode (https://developers.openai.com/codex/noninteractive) with a
    model provider of its own (https://developers.openai.com/codex/config-reference)."""
    provider = (
        f'{{name="model double", base_url="{model_url}/v1", '
        'env_key="OPENAI_API_KEY", wire_api="responses"}'
    )
    argv = [
        str(program),
        "exec",
        "--json",
        "--skip-git-repo-check",
        *sandbox,
        "-m",
        CODEX_MODEL,
        "-c",
        "model_provider=double",
        "-c",
        f"model_providers.double={provider}",
        "-c",
        "analytics.enabled=false",
        "-c",
        "check_for_update_on_startup=false",
        PROMPT,
    ]
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)  # Codex stops when CODEX_HOME names no directory
    environment = {"CODEX_HOME": str(codex_home), "OPENAI_API_KEY": "sk-model-double"}
    return argv, base_environment(home) | environment


def base_environment(home: Path) -> dict[str, str]:
    """Nothing of this process's environment but PATH: no user's keys or settings."""
    temporary = home / "tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    # Codex makes its helper commands (its sandbox among them) under CODEX_HOME, and
    # refuses to when CODEX_HOME is inside the temporary directory.
    return {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(temporary)}


def claude_code_final_message(stdout: str) -> dict[str, Any]:
    """`--output-format json` prints one result object."""
    result = json.loads(stdout)
    assert result["type"] == "result" and result["subtype"] == "success", result
    assert result["is_error"] is False, result
    return {
        "message": result["result"],
        "turns": result["num_turns"],
        "cost_usd": result["total_cost_usd"],
    }


def codex_final_message(stdout: str) -> dict[str, Any]:
    """`--json` prints one event a line; the last agent_message item is the answer."""
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert not [e for e in lines if e["type"] in ("turn.failed", "error")], lines
    items = [e["item"] for e in lines if e["type"] == "item.completed"]
    [usage] = [e["usage"] for e in lines if e["type"] == "turn.completed"]
    changes = [c for item in items if item["type"] == "file_change" for c in item["changes"]]
    assert all(i["status"] == "completed" for i in items if "status" in i), items
    return {
        "message": [i["text"] for i in items if i["type"] == "agent_message"][-1],
        "usage": usage,
        "changes": changes,
    }


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    subprocess.run(["git", "init", "--quiet", str(workspace)], check=True)
    return workspace


def run_against_double(
    script: list[dict[str, Any]], command: Any, workspace: Path
) -> tuple[subprocess.CompletedProcess[str], ModelDouble]:
    double = ModelDouble(script)
    double.start()
    try:
        argv, environment = command(double.url)
        done = subprocess.run(
            argv,
            cwd=workspace,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
    finally:
        double.stop()
    return done, double


def writes_hello(cli: str) -> list[dict[str, Any]]:
    return [
        {"write_file": {"path": "hello.txt", "content": f"hi from {cli}\n"}},
        {"text": FINAL},
    ]


def test_claude_code_writes_the_file_the_model_asks_for(workspace, tmp_path):
    program = agent_cli("claude-code")

    done, double = run_against_double(
        writes_hello("claude-code"),
        lambda url: claude_code(program, url, tmp_path / "home"),
        workspace,
    )

    assert done.returncode == 0, done.stderr
    assert (workspace / "hello.txt").read_text() == "hi from claude-code\n"
    summary = claude_code_final_message(done.stdout)
    assert summary["message"] == FINAL
    assert summary["turns"] == 2
    assert summary["cost_usd"] > 0
    assert double.mismatches == [] and double.turns_left == 0
    first = double.requests[0]
    assert (first["path"], first["query"]) == ("/v1/messages", "beta=true")
    assert first["headers"]["x-api-key"] == "sk-ant-model-double"
    assert first["body"]["model"] == CLAUDE_MODEL and first["body"]["stream"] is True
    assert PROMPT in json.dumps(first["body"]["messages"])
    # The model's tool call came back to it as the tool's result.
    answered = double.requests[1]["body"]["messages"][-1]["content"][0]
    assert answered["type"] == "tool_result" and not answered.get("is_error")


@pytest.mark.parametrize(
    "sandbox",
    [
        # The preset: Codex inside the product's own (bubblewrap) sandbox, its own off.
        ["--dangerously-bypass-approvals-and-sandbox"],
        # Codex's own sandbox (bubblewrap + seccomp): needs user namespaces, and
        # CODEX_HOME outside TMPDIR (see base_environment).
        ["--sandbox", "workspace-write"],
    ],
    ids=["bypass", "workspace-write"],
)
def test_codex_writes_the_file_the_model_asks_for(workspace, tmp_path, sandbox):
    program = agent_cli("codex")
    if sandbox[-1] == "workspace-write" and not user_namespaces():
        pytest.skip("Codex's own sandbox needs unprivileged user namespaces")

    done, double = run_against_double(
        writes_hello("codex"),
        lambda url: codex(program, url, tmp_path / "home", sandbox),
        workspace,
    )

    assert done.returncode == 0, done.stderr
    assert (workspace / "hello.txt").read_text() == "hi from codex\n"
    summary = codex_final_message(done.stdout)
    assert summary["message"] == FINAL
    assert summary["changes"] == [{"path": str(workspace / "hello.txt"), "kind": "add"}]
    assert summary["usage"]["input_tokens"] > 0
    assert double.mismatches == [] and double.turns_left == 0
    first = double.requests[0]
    assert first["path"] == "/v1/responses"
    assert first["headers"]["authorization"] == "Bearer sk-model-double"
    assert first["body"]["model"] == CODEX_MODEL and first["body"]["stream"] is True
    assert PROMPT in json.dumps(first["body"]["input"])
    # The patch was applied, and Codex told the model so.
    [output] = [
        item
        for item in double.requests[1]["body"]["input"]
        if item["type"] == "custom_tool_call_output"
    ]
    assert "Success" in output["output"]


def user_namespaces() -> bool:
    unshare = shutil.which("unshare")
    return bool(unshare) and subprocess.run([unshare, "-Ur", "true"]).returncode == 0
