"""A warm process that a big job left holding much more memory than it started with is
replaced by a fresh fork of the supervisor after that job (which shares its pages)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.events import worker
from bot.events.worker import WarmWorker, private_mib


def test_a_process_sees_its_own_memory() -> None:
    own = private_mib()
    assert own is not None and own > 0


@pytest.mark.parametrize(("grown", "replaced"), [(40.0, True), (4.0, False)])
def test_a_warm_process_that_grew_gives_way_to_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch, grown: float, replaced: bool
) -> None:
    lane = SimpleNamespace(private_at_start=30.0, _stop_requested=False)
    monkeypatch.setattr(worker, "private_mib", lambda: 30.0 + grown)

    WarmWorker._recycle_if_grown(lane)  # type: ignore[arg-type]

    assert lane._stop_requested is replaced
