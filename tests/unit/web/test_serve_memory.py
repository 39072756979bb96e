"""gunicorn's workers share what the master loaded: it is loaded and frozen before the
fork, and nothing after the fork runs a collection (one writes to every shared object,
and so copies every page the workers shared with the master)."""

from __future__ import annotations

import gc

import pytest

from bot.settings import load_settings
from bot.web import serve as serve_module
from bot.web.serve import _Gunicorn


def test_the_master_loads_everything_before_gunicorn_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    happened: list[str] = []
    monkeypatch.setattr(serve_module, "run_apart", lambda migrate: None)
    monkeypatch.setattr(serve_module, "check_address", lambda host, port: None)
    monkeypatch.setattr(serve_module, "preload", lambda url: happened.append("preload"))
    monkeypatch.setattr(_Gunicorn, "run", lambda self: happened.append("fork and serve"))

    serve_module.serve(load_settings({"REDIS_URL": "redis://127.0.0.1:6379/9"}), "127.0.0.1", 0)

    assert happened == ["preload", "fork and serve"]


@pytest.mark.parametrize("redis_url", ["redis://127.0.0.1:6379/9", None])
def test_a_worker_after_the_fork_freezes_without_collecting(
    monkeypatch: pytest.MonkeyPatch, redis_url: str | None
) -> None:
    settings = load_settings({"REDIS_URL": redis_url} if redis_url else {})
    app = _Gunicorn(settings, {"bind": "127.0.0.1:0"})
    collections: list[object] = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args))
    monkeypatch.setattr(serve_module.maintenance, "start_thread", lambda *args: None)
    monkeypatch.setattr(serve_module.maintenance, "start_threads", lambda *args: None)
    monkeypatch.setattr(serve_module.maintenance, "run_chores", lambda *args: None)
    monkeypatch.setattr(serve_module, "requeue_unfinished", lambda *args, **kwargs: None)
    post_fork = app.cfg.post_worker_init
    try:
        post_fork(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

    assert collections == []
