"""A sync against the GitHub double leaves its summary line and shows on /metrics."""

from __future__ import annotations

import hashlib
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.repo_config import RepoConfig
from bot.repositories import record_repository
from bot.settings import Settings
from bot.sync import sync_spec
from bot.web.metrics import render_metrics
from fakehub import FakeHub
from specs.load import load_spec
from storage.db import session_scope
from tests.integration.conftest import github_side, new_repository

SPEC = """\
id: observed
title: Observed
phase: tasks
tasks:
  - {id: TSK-1, title: One}
  - {id: TSK-2, title: Two, depends_on: [TSK-1]}
  - {id: TSK-3, title: Three}
"""


def _metrics(settings: Settings) -> dict[str, float]:
    """Sample name with labels → value, e.g. 'specbridge_github_requests_total{kind=...}'."""
    text = render_metrics(settings).decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_sync_logs_its_summary_and_counts_its_requests_and_duration(
    hub: FakeHub, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    full_name = new_repository(hub, "observed")
    spec_file, _ = load_spec(SPEC, "specs/observed.yaml")
    assert spec_file is not None
    syncs = "specbridge_sync_duration_seconds_count[]"
    mutations = "specbridge_github_requests_total[('kind', 'graphql_mutation'), ('status', '200')]"
    before = _metrics(settings)

    with session_scope(settings.database_url) as session:
        repository = record_repository(session, {"full_name": full_name})
        github = github_side(
            settings, full_name, RepoConfig(project_owner="acme", project_number=1)
        )
        sync_spec(
            session,
            settings,
            github,
            repository,
            spec_file,
            "c0ffee",
            hashlib.sha256(SPEC.encode()).hexdigest(),
        )

    [line] = [r for r in caplog.records if getattr(r, "spec", None) == "observed"]
    assert (line.opened, line.closed) == (4, 0)  # three tickets and the tracking issue
    assert line.writes > 0 and line.repository == full_name
    after = _metrics(settings)
    assert after[syncs] - before[syncs] == 1
    assert after[mutations] - before.get(mutations, 0) >= 1
