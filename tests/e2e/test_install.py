"""Installing the App: the specs already in a repository are synced once, each
repository in a delivery of its own, with real processes and the GitHub double."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StartStack
from tests.support import SPECBRIDGE_COLUMNS

pytestmark = pytest.mark.e2e

CONFIG = "project: {owner: acme, number: 1}\n"
ROCKET = "title: Rocket\nphase: tasks\ntasks:\n  - {id: R-1, title: Build the engine}\n"
MANUAL = "title: Manual\nphase: tasks\ntasks:\n  - {id: M-1, title: Write the manual}\n"
PROBE = "title: Probe\nphase: tasks\ntasks:\n  - {id: P-1, title: Launch the probe}\n"


def test_installing_the_app_syncs_the_specs_already_there(start_stack: StartStack) -> None:
    stack = start_stack()
    for name, spec in (("rocket", ROCKET), ("probe", PROBE)):
        stack.admin(
            "POST",
            "repos",
            owner="acme",
            name=name,
            installed=False,
            files={".github/specbridge.yml": CONFIG, f"specs/{name}.yaml": spec},
            project={"number": 1},
            status_options=SPECBRIDGE_COLUMNS,
        )
    stack.commit("acme/rocket", {"specs/manual.yaml": MANUAL})  # before the App: nobody hears
    stack.settle()
    assert stack.issues("acme/rocket") == []

    stack.admin("POST", "installations/acme", repositories=["rocket"], user="mona")
    stack.settle()
    assert sorted(i["title"] for i in stack.issues("acme/rocket")) == [
        "M-1: Write the manual",
        "R-1: Build the engine",
        "Spec: Manual",
        "Spec: Rocket",
    ]
    assert stack.issues("acme/probe") == []

    stack.admin("POST", "installations/acme", repositories=["probe"], user="mona")
    stack.settle()
    assert sorted(i["title"] for i in stack.issues("acme/probe")) == [
        "P-1: Launch the probe",
        "Spec: Probe",
    ]
    assert len(stack.issues("acme/rocket")) == 4  # synced once
    assert set(stack.board("acme/probe").values()) == {"Backlog"}
    assert stack.mismatches() == []
