from __future__ import annotations

import pytest

from bot.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings
from fakehub.apps import new_private_key


def test_defaults_are_embedded() -> None:
    settings = load_settings({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.embedded_queue
    assert settings.github_api_url == "https://api.github.com"


def test_postgresql_urls_use_psycopg() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://me@db.example/specs"})
    assert settings.database_url == "postgresql+psycopg://me@db.example/specs"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("GITHUB_API_URL", "ghe.example"),
        ("GITHUB_APP_ID", "twelve"),
        ("GITHUB_PRIVATE_KEY_PATH", "/nonexistent/key.pem"),
        ("GITHUB_PRIVATE_KEY", "hello"),
        ("SPECBRIDGE_SECRET_KEY", "not-a-fernet-key"),
    ],
)
def test_a_malformed_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({name: value})
    assert str(error.value).startswith(name)
    assert "\n" not in str(error.value)


def test_private_key_is_read_from_its_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "app.pem"
    key_file.write_text(new_private_key())
    settings = load_settings({"GITHUB_APP_ID": "42", "GITHUB_PRIVATE_KEY_PATH": str(key_file)})
    assert settings.uses_app_auth
    assert settings.github_app_id == 42


def test_the_persons_token_settings_are_kept_out_of_repr() -> None:
    settings = load_settings(
        {
            "GITHUB_CLIENT_ID": "Iv1.client",
            "GITHUB_CLIENT_SECRET": "client-s3cret",
            "SPECBRIDGE_SECRET_KEY": "x" * 43 + "=",
        }
    )
    assert settings.github_client_id == "Iv1.client"
    assert "client-s3cret" not in repr(settings) and "x" * 43 not in repr(settings)
