"""An agent's words, made fit to post, log or store: no secret in them, nobody notified.

Whatever an agent prints (its output, its summary, a file name in an error) is
hostile input. Before specbridge posts it (an issue comment, a pull request's
title or body), logs it or stores it (a task's log tail, summary, error):

- the values it knows to be secret are replaced by `***`: the profile's `env:`
  and `env_from:` values (its API keys), the installation's and people's
  tokens, the webhook secret, the lines of the App's private key. A value
  shorter than MIN_SECRET_CHARS is left alone (replacing every `1` would make
  the text unreadable, and such a value keeps nothing secret); a short one,
  up to SHORT_SECRET_CHARS, only where it stands as a word of its own;
- anything shaped like a well-known credential is replaced too, whoever it
  belongs to: GitHub's tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_),
  Anthropic's and OpenAI's keys (sk-ant-, sk-), Google's (AIza), AWS access
  key ids, Slack, GitLab, npm, PyPI and Hugging Face tokens, JSON web tokens,
  private key blocks, `Authorization:` header values and passwords in URLs;

and, where it is shown as markdown, mentions of people and teams are escaped
(as on the tracking issue), closing keywords ("Fixes #12") link to nothing,
and hidden HTML comments (specbridge's markers) are shown, not hidden.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.github.text import shown

MIN_SECRET_CHARS = 4
SHORT_SECRET_CHARS = 7
HIDDEN = "***"

TOKEN_SHAPES = re.compile(
    r"""
      \b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{16,}
    | \bgithub_pat_[A-Za-z0-9_]{22,}
    | \bsk-ant-[A-Za-z0-9_-]{16,}
    | \bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}
    | \bAIza[0-9A-Za-z_-]{30,}
    | \b(?:AKIA|ASIA)[0-9A-Z]{16}\b
    | \bxox[abposr]-[A-Za-z0-9-]{10,}
    | \bglpat-[A-Za-z0-9_-]{20,}
    | \bnpm_[A-Za-z0-9]{36}\b
    | \bpypi-[A-Za-z0-9_-]{40,}
    | \bhf_[A-Za-z0-9]{30,}
    | \beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}
    | -----BEGIN[A-Z ]*PRIVATE\ KEY-----(?:.*?-----END[A-Z ]*PRIVATE\ KEY-----|.*)
    """,
    re.VERBOSE | re.DOTALL,
)
_AUTHORIZATION = re.compile(
    r"(?i)\b((?:proxy-)?authorization:\s*(?:basic|bearer|token)?\s*)[^\s\"']+"
)
_URL_PASSWORD = re.compile(r"://[^/@\s]+@")
# "Fixes #12", "closes acme/rocket#3": in a pull request's body, merged, they close issues.
_CLOSING = re.compile(
    r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(\s*:?\s+)((?:[\w.-]+/[\w.-]+)?)#(?=\d)"
)


@dataclass(frozen=True)
class Redactor:
    """`redactor(text)`: the text with every secret it knows of, and every credential-shaped
    string, replaced by ***."""

    secrets: tuple[str, ...] = ()
    short: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        found: set[str] = set()
        for value in values:
            if not value:
                continue
            for part in {value, *value.splitlines()}:
                part = part.strip()
                if len(part) >= MIN_SECRET_CHARS:
                    found.add(part)
                    # As git (and curl) send a token: HTTP Basic, base64.
                    found.add(base64.b64encode(f"x-access-token:{part}".encode()).decode())
        long = sorted((s for s in found if len(s) > SHORT_SECRET_CHARS), key=len, reverse=True)
        short = tuple(
            re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])")
            for s in sorted(found - set(long), key=len, reverse=True)
        )
        return cls(tuple(long), short)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        for pattern in self.short:
            text = pattern.sub(HIDDEN, text)
        text = TOKEN_SHAPES.sub(HIDDEN, text)
        text = _AUTHORIZATION.sub(rf"\1{HIDDEN}", text)
        return _URL_PASSWORD.sub(f"://{HIDDEN}@", text)


def inert(text: str) -> str:
    """Agent text to show as markdown: mentions escaped, closing keywords unlinked, and
    HTML comments shown (nothing the agent wrote hides in the page, or acts on GitHub)."""
    text = _CLOSING.sub(r"\1\2\3#&#8203;", text)
    return shown(text.replace("<!--", "&lt;!--"))


def code_block(text: str) -> str:
    """`text` in a fenced code block it cannot close: the fence is longer than any run of
    backticks in it (GitHub shows code as it is: no mention, no markup)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
