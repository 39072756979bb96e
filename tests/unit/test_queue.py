"""Only jobs of ours go on a queue, and each of them resolves to a function."""

from __future__ import annotations

import importlib
import os

import pytest

from bot.queue import EVENTS, JOBS, enqueue
from bot.settings import load_settings


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_allowed_job_is_a_function_of_ours(name: str) -> None:
    module, _, function = name.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))


def test_a_function_not_allowed_is_refused_before_it_is_queued(db: str) -> None:
    settings = load_settings({"DATABASE_URL": db})
    with pytest.raises(ValueError, match=r"posix\.system is not in bot\.queue\.JOBS"):
        enqueue(settings, EVENTS, os.system, "true")
