"""How many PostgreSQL connections a process holds is a setting: each engine keeps
DATABASE_POOL_SIZE open and opens at most DATABASE_MAX_OVERFLOW more while busy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from bot.settings import SettingsError, load_settings
from storage.db import get_engine, pool_limits, statement_engine


@pytest.fixture(autouse=True)
def default_pool() -> Iterator[None]:
    yield
    load_settings({})  # the defaults again, for the engines later tests create


def test_the_pool_of_each_engine_follows_the_settings() -> None:
    # Nothing listens there: an engine connects only when first used.
    url = f"postgresql://nobody@127.0.0.1:1/pool_{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        {"DATABASE_URL": url, "DATABASE_POOL_SIZE": "3", "DATABASE_MAX_OVERFLOW": "1"}
    )

    assert (settings.database_pool_size, settings.database_max_overflow) == (3, 1)
    assert pool_limits() == (3, 4)
    for engine in (get_engine(settings.database_url), statement_engine(settings.database_url)):
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 1  # type: ignore[attr-defined]


def test_sqlalchemy_s_defaults_without_the_settings() -> None:
    settings = load_settings({})
    assert (settings.database_pool_size, settings.database_max_overflow) == (5, 10)
    assert pool_limits() == (5, 15)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_POOL_SIZE", "0", "DATABASE_POOL_SIZE must be 1 or more"),
        ("DATABASE_POOL_SIZE", "many", "DATABASE_POOL_SIZE must be a whole number"),
        ("DATABASE_MAX_OVERFLOW", "-1", "DATABASE_MAX_OVERFLOW must be a whole number"),
    ],
)
def test_a_pool_setting_that_cannot_work_is_one_line(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({name: value})
