"""The `specbridge` check: the exact check-run requests, and the handlers fed
GitHub's published `pull_request`, `check_suite`, `check_run` and
`installation` payloads."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import responses
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.events.handlers.installation import FIRST_SYNC
from bot.events.router import Event, router
from bot.github import github_client
from bot.github.checks import Annotation, ChecksGateway
from bot.settings import Settings
from storage.models import (
    Delivery,
    IssueState,
    Repository,
    Spec,
    SpecPhase,
    SpecStatus,
    SpecTask,
    Ticket,
)
from tests.support import MOCK_API, github_payload
from tests.unit.conftest import HeldJob

REPO = "Codertocat/Hello-World"
API = f"{MOCK_API}/repos/{REPO}"
BROKEN = """id: broken
title: Broken
phase: tasks
tasks:
  - id: TSK-1
    title: One
    depends_on: [TSK-9]
"""
LOGIN = """id: login
title: Passwordless login
phase: tasks
tasks:
  - id: TSK-1
    title: Store one-time tokens
  - id: TSK-2
    title: Email the link
    depends_on: [TSK-1]
"""


def dispatch(session: Session, settings: Settings, event: str, payload: dict[str, Any]) -> None:
    router.dispatch(Event(event, payload, "delivery-1", settings, session))


def _contents(text: str) -> dict[str, Any]:
    return {
        "type": "file",
        "encoding": "base64",
        "content": base64.b64encode(text.encode()).decode(),
    }


def _run(run_id: int, sha: str, status: str, conclusion: str | None = None) -> dict[str, Any]:
    return {"id": run_id, "head_sha": sha, "status": status, "conclusion": conclusion}


def _body(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def _mock_files(base: str, head: str, files: dict[str, str], removed: tuple[str, ...] = ()) -> None:
    listed = [{"filename": p, "status": "added"} for p in files]
    listed += [{"filename": p, "status": "removed"} for p in removed]
    responses.get(f"{API}/compare/{base}...{head}", json={"files": listed})
    for path, text in files.items():
        responses.get(f"{API}/contents/{path}", json=_contents(text))


# -- the gateway -------------------------------------------------------------------


@responses.activate
def test_a_run_starts_in_progress_and_completes_with_annotations_in_pages_of_50(
    handler_settings: Settings,
) -> None:
    checks = ChecksGateway(github_client(handler_settings, None), REPO)
    create = responses.post(f"{API}/check-runs", json=_run(7, "abc", "in_progress"), status=201)
    update = responses.patch(f"{API}/check-runs/7", json=_run(7, "abc", "completed", "failure"))
    found = [
        Annotation("specs/a.yaml", n, 2, "failure", f"problem {n}", "code") for n in range(1, 121)
    ]

    run = checks.start("specbridge", "abc", "Checking spec files", "…")
    checks.complete(run.id, "failure", "120 errors", "the plan", found)

    started = _body(create.calls[0])
    assert {k: started[k] for k in ("name", "head_sha", "status", "output")} == {
        "name": "specbridge",
        "head_sha": "abc",
        "status": "in_progress",
        "output": {"title": "Checking spec files", "summary": "…"},
    }
    pages = [_body(call) for call in update.calls]
    assert [len(p["output"]["annotations"]) for p in pages] == [50, 50, 20]
    assert (pages[0]["status"], pages[0]["conclusion"]) == ("completed", "failure")
    assert all("conclusion" not in p for p in pages[1:])
    assert all(p["output"]["title"] == "120 errors" for p in pages)
    assert pages[0]["output"]["annotations"][0] == {
        "path": "specs/a.yaml",
        "start_line": 1,
        "end_line": 1,
        "start_column": 2,
        "end_column": 2,
        "annotation_level": "failure",
        "message": "problem 1",
        "title": "code",
    }
    assert pages[2]["output"]["annotations"][-1]["start_line"] == 120


@responses.activate
def test_a_summary_longer_than_github_keeps_is_cut(handler_settings: Settings) -> None:
    checks = ChecksGateway(github_client(handler_settings, None), REPO)
    update = responses.patch(f"{API}/check-runs/7", json=_run(7, "abc", "completed", "success"))
    checks.complete(7, "success", "ok", "x" * 70_000)
    assert len(_body(update.calls[0])["output"]["summary"]) == 65_535


# -- pull_request ----------------------------------------------------------------------


@responses.activate
def test_a_pull_request_with_a_broken_and_a_valid_spec_fails_with_the_plan(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("pull_request", "opened.payload.json")
    head, base = payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"]
    _mock_files(
        base, head, {"specs/broken.yaml": BROKEN, "specs/login.yaml": LOGIN, "README.md": ""}
    )
    runs = responses.get(
        f"{API}/commits/{head}/check-runs", json={"total_count": 0, "check_runs": []}
    )
    create = responses.post(f"{API}/check-runs", json=_run(7, head, "in_progress"), status=201)
    complete = responses.patch(f"{API}/check-runs/7", json=_run(7, head, "completed", "failure"))

    dispatch(session, handler_settings, "pull_request", payload)

    assert runs.calls[0].request.params == {
        "check_name": "specbridge",
        "filter": "all",
        "per_page": "100",
    }
    assert _body(create.calls[0])["head_sha"] == head
    done = _body(complete.calls[0])
    assert done["conclusion"] == "failure"
    assert [
        (a["path"], a["start_line"], a["start_column"], a["annotation_level"])
        for a in done["output"]["annotations"]
    ] == [("specs/broken.yaml", 7, 18, "failure")]
    summary = done["output"]["summary"]
    assert "`specs/broken.yaml` does not validate" in summary
    assert "**Opens** the tracking issue _Spec: Passwordless login_" in summary
    assert "`TSK-1` Store one-time tokens" in summary
    assert "`TSK-2` Email the link (after `TSK-1`)" in summary
    assert "```mermaid\ngraph TD" in summary and "t0 --> t1" in summary
    assert done["output"]["title"] == "1 error in 1 spec file"
    # Nothing but the check run is written, and nothing is recorded of the specs.
    assert [c.request.method for c in responses.calls if c.request.method != "GET"] == [
        "POST",
        "PATCH",
    ]
    assert session.scalars(select(Spec)).all() == []


@responses.activate
def test_the_plan_names_what_changes_on_recorded_issues(
    session: Session, handler_settings: Settings
) -> None:
    repository = Repository(full_name=REPO, default_branch="master")
    spec = Spec(
        repository=repository,
        key="login",
        path="specs/login.yaml",
        title="Passwordless login",
        phase=SpecPhase.TASKS,
        status=SpecStatus.PLANNED,
        tracking_issue_number=10,
        labels=[],
    )
    one = SpecTask(spec=spec, key="TSK-1", title="Store tokens", position=0)
    gone = SpecTask(spec=spec, key="TSK-3", title="Audit", position=1)
    session.add_all(
        [
            repository,
            spec,
            one,
            gone,
            Ticket(repository=repository, spec=spec, spec_task=one, issue_number=11),
            Ticket(
                repository=repository,
                spec=spec,
                spec_task=gone,
                issue_number=13,
                state=IssueState.OPEN,
            ),
        ]
    )
    session.commit()
    payload = github_payload("pull_request", "synchronize.payload.json")
    head, base = payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"]
    _mock_files(base, head, {"specs/login.yaml": LOGIN})
    responses.get(f"{API}/commits/{head}/check-runs", json={"total_count": 0, "check_runs": []})
    responses.post(f"{API}/check-runs", json=_run(7, head, "in_progress"), status=201)
    complete = responses.patch(f"{API}/check-runs/7", json=_run(7, head, "completed", "success"))

    dispatch(session, handler_settings, "pull_request", payload)

    done = _body(complete.calls[0])
    summary = done["output"]["summary"]
    assert done["conclusion"] == "success"
    assert "**Changes** #11 `TSK-1`: title" in summary
    assert "**Opens** 1 issue:\n  - `TSK-2` Email the link (after `TSK-1`)" in summary
    assert "**Closes as not planned** 1 issue:\n  - #13 `TSK-3`" in summary
    assert "Opens** the tracking issue" not in summary
    # The graph's nodes say what each task is, not its id alone.
    assert '["#11 TSK-1: Store one-time tokens"]:::changed' in summary
    assert '["new: TSK-2: Email the link"]:::new' in summary
    assert session.get(SpecTask, one.id).title == "Store tokens"  # nothing recorded


@responses.activate
def test_a_pull_request_touching_no_spec_gets_no_check(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("pull_request", "opened.payload.json")
    head, base = payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"]
    _mock_files(base, head, {"README.md": "hello"})
    dispatch(session, handler_settings, "pull_request", payload)
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        f"{API}/compare/{base}...{head}"
    ]


@responses.activate
def test_a_redelivered_event_finds_its_run_done_and_writes_nothing(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("pull_request", "reopened.payload.json")
    head, base = payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"]
    _mock_files(base, head, {"specs/login.yaml": LOGIN})
    responses.get(
        f"{API}/commits/{head}/check-runs",
        json={"total_count": 1, "check_runs": [_run(7, head, "completed", "success")]},
    )
    dispatch(session, handler_settings, "pull_request", payload)
    assert all(c.request.method == "GET" for c in responses.calls)


@responses.activate
def test_a_run_left_in_progress_by_a_crash_is_completed(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("pull_request", "opened.payload.json")
    head, base = payload["pull_request"]["head"]["sha"], payload["pull_request"]["base"]["sha"]
    _mock_files(base, head, {"specs/login.yaml": LOGIN})
    responses.get(
        f"{API}/commits/{head}/check-runs",
        json={"total_count": 1, "check_runs": [_run(5, head, "in_progress")]},
    )
    complete = responses.patch(f"{API}/check-runs/5", json=_run(5, head, "completed", "success"))
    dispatch(session, handler_settings, "pull_request", payload)
    assert _body(complete.calls[0])["conclusion"] == "success"
    assert not [c for c in responses.calls if c.request.method == "POST"]


# -- check_suite and check_run ---------------------------------------------------------


@responses.activate
def test_a_suite_requested_for_a_push_without_pull_request_gets_no_check(
    session: Session, handler_settings: Settings
) -> None:
    payload = github_payload("check_suite", "requested.payload.json")
    assert payload["check_suite"]["pull_requests"] == []
    dispatch(session, handler_settings, "check_suite", payload)
    assert len(responses.calls) == 0


@responses.activate
def test_a_suite_rerequested_gets_a_new_run(session: Session, handler_settings: Settings) -> None:
    payload = github_payload("check_suite", "rerequested.payload.json")
    suite = payload["check_suite"]
    head, base = suite["head_sha"], suite["pull_requests"][0]["base"]["sha"]
    _mock_files(base, head, {"specs/login.yaml": LOGIN})
    create = responses.post(f"{API}/check-runs", json=_run(8, head, "in_progress"), status=201)
    responses.patch(f"{API}/check-runs/8", json=_run(8, head, "completed", "success"))
    dispatch(session, handler_settings, "check_suite", payload)
    assert _body(create.calls[0])["head_sha"] == head


@pytest.mark.parametrize("name, checked", [("randscape", False), ("specbridge", True)])
@responses.activate
def test_a_run_rerequested_is_checked_again_if_it_is_ours(
    session: Session, handler_settings: Settings, name: str, checked: bool
) -> None:
    payload = github_payload("check_run", "rerequested.payload.json")
    payload["check_run"]["name"] = name
    full_name = payload["repository"]["full_name"]
    api = f"{MOCK_API}/repos/{full_name}"
    head = payload["check_run"]["head_sha"]
    branch = payload["repository"]["default_branch"]
    responses.get(f"{api}/commits/{branch}", json={"sha": "base1"})
    responses.get(
        f"{api}/compare/base1...{head}",
        json={"files": [{"filename": "specs/login.yaml", "status": "modified"}]},
    )
    responses.get(f"{api}/contents/specs/login.yaml", json=_contents(LOGIN))
    create = responses.post(f"{api}/check-runs", json=_run(9, head, "in_progress"), status=201)
    responses.patch(f"{api}/check-runs/9", json=_run(9, head, "completed", "success"))
    dispatch(session, handler_settings, "check_run", payload)
    assert len(create.calls) == (1 if checked else 0)


# -- installation ---------------------------------------------------------------------


@responses.activate
def test_installing_the_app_syncs_the_spec_files_already_there(
    session: Session, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    payload = github_payload("installation", "created.payload.json")
    responses.get(API, json={"default_branch": "master"})
    responses.get(f"{API}/commits/master", json={"sha": "c0ffee"})
    responses.get(
        f"{API}/contents/.github/specbridge.yml", status=404, json={"message": "Not Found"}
    )
    responses.get(
        f"{API}/contents/specs",
        json=[{"type": "file", "path": "specs/login.yaml", "name": "login.yaml"}],
    )
    responses.get(f"{API}/contents/.kiro/specs", status=404, json={"message": "Not Found"})
    design = LOGIN.replace("phase: tasks", "phase: design")
    responses.get(f"{API}/contents/specs/login.yaml", json=_contents(design))

    dispatch(session, handler_settings, "installation", payload)
    assert len(responses.calls) == 0  # the sync is a delivery of its own
    _run_first_syncs(session, handler_settings, held_jobs)

    session.expire_all()
    spec = session.scalars(select(Spec)).one()
    assert (spec.repository.full_name, spec.path, spec.source_commit) == (
        REPO,
        "specs/login.yaml",
        "c0ffee",
    )
    assert spec.repository.installation.github_id == payload["installation"]["id"]
    assert all(c.request.method == "GET" for c in responses.calls)  # a design spec: no issue


@responses.activate
def test_a_repository_added_to_the_installation_is_synced_too(
    session: Session, handler_settings: Settings, held_jobs: list[HeldJob]
) -> None:
    payload = github_payload("installation_repositories", "added.payload.json")
    api = f"{MOCK_API}/repos/Codertocat/Space"
    responses.get(api, json={"default_branch": "main"})
    responses.get(f"{api}/commits/main", json={"sha": "c0ffee"})
    responses.get(
        f"{api}/contents/.github/specbridge.yml", status=404, json={"message": "Not Found"}
    )
    contents = responses.get(f"{api}/contents/specs", status=404, json={"message": "Not Found"})
    responses.get(f"{api}/contents/.kiro/specs", status=404, json={"message": "Not Found"})
    dispatch(session, handler_settings, "installation_repositories", payload)
    _run_first_syncs(session, handler_settings, held_jobs)
    assert len(contents.calls) == 1
    assert session.scalars(select(Spec)).all() == []


def _run_first_syncs(session: Session, settings: Settings, held_jobs: list[HeldJob]) -> None:
    """The first syncs the installation handed on, each one queued as its own delivery."""
    handed_on = session.scalars(select(Delivery).where(Delivery.event == FIRST_SYNC)).all()
    assert [job.args for job in held_jobs if job.name == "process_delivery"] == [
        (d.id,) for d in handed_on
    ]
    for delivery in handed_on:
        dispatch(session, settings, delivery.event, delivery.payload)


# -- specbridge plan -------------------------------------------------------------------


def test_specbridge_plan_prints_the_plan_of_files_on_disk(
    session: Session,
    db: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main
    from bot.settings import get_settings

    repository = Repository(full_name=REPO)
    old = Spec(
        repository=repository,
        key="old",
        path="specs/old.yaml",
        title="Old",
        phase=SpecPhase.TASKS,
        status=SpecStatus.PLANNED,
        tracking_issue_number=3,
    )
    task = SpecTask(spec=old, key="OLD-1", title="Old work")
    session.add_all(
        [
            repository,
            old,
            task,
            Ticket(repository=repository, spec=old, spec_task=task, issue_number=4),
        ]
    )
    session.commit()
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "login.yaml").write_text(LOGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db)
    get_settings.cache_clear()
    try:
        assert main(["plan", "specs/", "--repo", REPO]) == 0
        out = capsys.readouterr().out
        assert "`TSK-1` Store one-time tokens" in out and "```mermaid" in out
        assert '["new: TSK-1: Store one-time tokens"]:::new' in out  # titled, as in a check
        assert "The file is deleted: the spec is cancelled." in out
        assert "- #4 `OLD-1`" in out
        assert main(["plan", "missing.yaml", "--repo", REPO]) == 2
        assert capsys.readouterr().err.strip() == (
            "specbridge: cannot read missing.yaml: No such file or directory"
        )
    finally:
        get_settings.cache_clear()
