"""An agent's words, as specbridge posts, logs or stores them (issue 29, finding 2 and 12)."""

from __future__ import annotations

import base64

import pytest

from bot.agents.redaction import Redactor, code_block, inert

# Shaped like the real ones; none of them is one.
SHAPES = {
    "classic PAT": "ghp_" + "a1B2c3D4e5" * 4,
    "OAuth": "gho_" + "Z9y8X7w6V5" * 4,
    "user-to-server": "ghu_" + "0123456789" * 4,
    "installation": "ghs_" + "abcdefghij" * 4,
    "refresh": "ghr_" + "klmnopqrst" * 8,
    "fine-grained PAT": "github_pat_11ABCDEFG0" + "x1y2z3" * 10,
    "Anthropic": "sk-ant-api03-" + "Qw3rTy_-Ui" * 9,
    "OpenAI": "sk-proj-" + "A1b2C3d4E5f6" * 4,
    "OpenAI, old": "sk-" + "0aB1cD2eF3" * 5,
    "Google": "AIza" + "SyA1234567890abcdefghijklmnopqrst",
    "AWS": "AKIA" + "IOSFODNN7EXAMPLE",
    "Slack": "xoxb-" + "1234567890-abcdefghij",
    "GitLab": "glpat-" + "abcdefghij0123456789",
    "npm": "npm_" + "abcdefghij0123456789abcdefghij012345",
    "Hugging Face": "hf_" + "abcdefghij0123456789abcdefghij",
    "JWT": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlLWhlcmU",
}


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_a_credential_shaped_string_is_hidden_whoever_it_belongs_to(kind: str) -> None:
    token = SHAPES[kind]
    said = f'export KEY={token}\n{{"key": "{token}"}} and ({token}).'
    assert Redactor()(said) == 'export KEY=***\n{"key": "***"} and (***).'


def test_a_private_key_block_is_hidden_whole() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAbCd\n-----END RSA PRIVATE KEY-----"
    assert Redactor()(f"found:\n{key}\ndone") == "found:\n***\ndone"
    assert Redactor()("-----BEGIN PRIVATE KEY-----\nMIIE, cut") == "***"


def test_headers_and_urls_lose_their_credentials() -> None:
    said = "Authorization: Bearer abc.def\nproxy-authorization: Basic Zm9vOmJhcg==\n"
    said += "fetching https://x-access-token:s3cr3tvalue@github.com/acme/rocket.git"
    assert Redactor()(said) == (
        "Authorization: Bearer ***\nproxy-authorization: Basic ***\n"
        "fetching https://***@github.com/acme/rocket.git"
    )


def test_values_the_bot_knows_are_hidden_and_their_base64_too() -> None:
    key = "model-key-that-has-no-known-shape"
    redact = Redactor.of([key, None, "", "line one of a key\nsecond line of a key"])
    basic = base64.b64encode(f"x-access-token:{key}".encode()).decode()
    assert redact(f"{key} / {basic} / second line of a key") == "*** / *** / ***"


def test_short_values_are_hidden_only_as_words_and_tiny_ones_not_at_all() -> None:
    redact = Redactor.of(["1", "on", "hunter2", "true"])
    assert redact("1 on hunter2, truest hunter22 true") == "1 on ***, truest hunter22 ***"


def test_mentions_closing_keywords_and_hidden_comments_are_made_inert() -> None:
    said = (
        "Done. cc @octocat and @acme/security; mail ops@acme.example.\n"
        "Fixes #12, closes acme/other#3, resolved: #4; see #5.\n"
        "<!-- specbridge: spec=x task=T-9 -->"
    )
    assert inert(said) == (
        "Done. cc @&#8203;octocat and @&#8203;acme/security; mail ops@acme.example.\n"
        "Fixes #&#8203;12, closes acme/other#&#8203;3, resolved: #&#8203;4; see #5.\n"
        "&lt;!-- specbridge: spec=x task=T-9 -->"
    )


def test_a_code_block_the_text_cannot_close() -> None:
    text = "```\n@octocat <b>hi</b>\n````"
    assert code_block(text) == f"`````\n{text}\n`````"
    assert code_block("plain") == "```\nplain\n```"
