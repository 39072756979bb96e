"""The status page says a sync is under way until its last job ends, not its first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.settings import load_settings
from bot.web.status_page import read_status
from storage.db import session_scope
from storage.models import Repository, Spec, SpecPhase, SpecStatus


def test_a_spec_whose_sync_continues_shows_it_under_way_then_done(db: str) -> None:
    settings = load_settings({"DATABASE_URL": db, "SPECBRIDGE_STATUS_TOKEN": "t"})
    resume_at = datetime.now(UTC) + timedelta(seconds=30)
    with session_scope(db) as session:
        spec = Spec(
            repository=Repository(full_name="acme/big"),
            key="big",
            path="specs/big.yaml",
            title="Big",
            phase=SpecPhase.TASKS,
            status=SpecStatus.EXECUTING,
            source_commit="abc",
            resume_at=resume_at,
            sync_started_at=datetime.now(UTC),
            sync_totals={"opened": 81, "changed": 0, "closed": 0, "writes": 9, "jobs": 2},
        )
        session.add(spec)
        session.commit()

        [row] = read_status(settings).specs["acme/big"]
        assert row.status == "executing, syncing"
        assert row.note == (
            f"sync under way: 81 issues opened so far, continues by itself from "
            f"{resume_at:%H:%M:%S} UTC"
        )

        spec.resume_at = spec.sync_started_at = spec.sync_totals = None  # its last job ended
        session.commit()
        [row] = read_status(settings).specs["acme/big"]
        assert (row.status, row.note) == ("executing", "")
