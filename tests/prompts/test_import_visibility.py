"""Imports write in short chunks and show their prompts all at once (app/prompts/service.py).

An import is paused between two chunks (its parser waits on an event, outside any transaction): meanwhile its
written prompts are never served, counted, searched or shown, and other requests (a task claim) complete. A failed
import leaves no rows; a killed one's batch is removed at the next start."""

import io
import os
import threading
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.models import ImportBatch, Prompt, Response, Role
from app.models.base import utcnow
from app.prompts import service

CHUNK = 5


def jsonl(ids: list[str], word: str = "zebra") -> bytes:
    return b"\n".join(orjson.dumps({"id": i, "prompt": f"{word} {i}", "responses": ["a", "b"]}) for i in ids) + b"\n"


class Paused:
    """Makes imports stop after `after` parsed records until `go` is set (parsing runs between chunks)."""

    def __init__(self, monkeypatch, after: int) -> None:
        self.paused, self.go = threading.Event(), threading.Event()
        original = service.parse_batch

        def parse(*args, **kwargs) -> Iterator:
            for i, item in enumerate(original(*args, **kwargs)):
                if i == after:
                    self.paused.set()
                    assert self.go.wait(60), "the test never let the import go on"
                yield item

        monkeypatch.setattr(service, "parse_batch", parse)
        monkeypatch.setattr(service, "CHUNK_SIZE", CHUNK)


def start_import(database, project, content: bytes) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = service.import_file(
                sessions=database.sessionmaker,
                project_id=project.id,
                stream=io.BytesIO(content),
                filename="big.jsonl",
                uploaded_by_id=None,
            )
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def rows(db, project) -> tuple[int, int, int]:
    """(all prompt rows, visible ones, batches) of the project, counted directly."""
    db.rollback()
    every = db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project.id))
    visible = db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project.id, Prompt.visible))
    batches = db.scalar(select(func.count()).select_from(ImportBatch).where(ImportBatch.project_id == project.id))
    return every, visible, batches


def test_a_loading_batch_is_invisible_and_others_are_served_between_its_chunks(
    database, db, client, make_user, make_project, bearer, monkeypatch
):
    annotator, researcher = make_user(Role.annotator), make_user(Role.researcher)
    project = make_project(members=[annotator], overlap=1)
    assert service.import_batch(
        session=db, project=project, stream=io.BytesIO(jsonl(["old"], "lion")), filename="a.jsonl", uploaded_by=None
    ).ok
    db.commit()
    a_headers, r_headers = bearer(annotator), bearer(researcher)
    pause = Paused(monkeypatch, after=12)
    ids = [f"n{i}" for i in range(30)]
    thread, out = start_import(database, project, jsonl(ids))
    try:
        assert pause.paused.wait(60), out
        every, visible, batches = rows(db, project)
        assert (every, visible, batches) == (11, 1, 2)  # two chunks of 5 written, plus the old prompt
        loading_id = db.scalar(select(Prompt.id).where(Prompt.external_id == "n0"))
        # A claim completes while the import is half-way, and gets the old prompt, never a loading one.
        task = client.get(f"/api/projects/{project.id}/next", headers=a_headers)
        assert task.status_code == 200 and task.json()["prompt_id"] != loading_id
        assert client.get(f"/api/projects/{project.id}/next", headers=a_headers).status_code in (200, 204)
        db.rollback()
        served = set(db.scalars(select(Prompt.external_id).where(Prompt.project_id == project.id, Prompt.active_count > 0)))
        assert served == {"old"}
        assert client.get(f"/api/projects/{project.id}/stats", headers=r_headers).json()["prompts"] == 1
        search = client.get(f"/api/projects/{project.id}/prompts", params={"q": "zebra"}, headers=r_headers)
        assert search.status_code == 200 and search.json()["items"] == []
        listed = client.get(f"/api/projects/{project.id}/prompts", headers=r_headers).json()["items"]
        assert [item["external_id"] for item in listed] == ["old"]
        assert client.get(f"/projects/{project.id}/prompts/{loading_id}", headers=r_headers).status_code == 404
    finally:
        pause.go.set()
        thread.join(60)
    assert out["result"].ok and out["result"].imported == 30, out
    assert rows(db, project) == (31, 31, 2)
    search = client.get(f"/api/projects/{project.id}/prompts", params={"q": "zebra", "limit": 100}, headers=r_headers)
    assert len(search.json()["items"]) == 30
    assert client.get(f"/api/projects/{project.id}/stats", headers=r_headers).json()["prompts"] == 31


def test_a_prompt_id_another_import_is_loading_fails_the_later_one_naming_it(database, db, make_project, monkeypatch):
    project = make_project()
    pause = Paused(monkeypatch, after=12)
    thread, out = start_import(database, project, jsonl([f"x{i}" for i in range(20)]))
    try:
        assert pause.paused.wait(60), out
        later = service.import_file(
            sessions=database.sessionmaker,
            project_id=project.id,
            stream=io.BytesIO(jsonl(["fresh", "x3"])),
            filename="later.jsonl",
            uploaded_by_id=None,
        )
        assert not later.ok and "'x3'" in later.errors[0] and "another upload" in later.errors[0]
        assert rows(db, project) == (10, 0, 1)  # the later one left nothing ("fresh" removed with it)
    finally:
        pause.go.set()
        thread.join(60)
    assert out["result"].ok
    again = service.import_batch(
        session=db, project=project, stream=io.BytesIO(jsonl(["fresh", "x3"])), filename="later.jsonl", uploaded_by=None
    )
    assert (again.imported, again.skipped) == (1, 1)


def test_a_file_error_after_written_chunks_leaves_no_rows(db, make_project, monkeypatch):
    monkeypatch.setattr(service, "CHUNK_SIZE", CHUNK)
    project = make_project()
    content = jsonl([f"e{i}" for i in range(20)]) + b'{"id": "bad", "prompt": "p", "responses": "not a list"}\n'
    result = service.import_batch(session=db, project=project, stream=io.BytesIO(content), filename="e.jsonl", uploaded_by=None)
    assert not result.ok and "line 21" in result.errors[0]
    assert rows(db, project) == (0, 0, 0)
    assert db.scalar(select(func.count()).select_from(Response)) == 0


def test_an_exception_midway_leaves_no_rows(db, make_project, monkeypatch):
    monkeypatch.setattr(service, "CHUNK_SIZE", CHUNK)
    written = []
    original = service._write_chunk

    def failing(**kwargs) -> None:
        if len(written) == 2:
            raise RuntimeError("disk on fire")
        original(**kwargs)
        written.append(1)

    monkeypatch.setattr(service, "_write_chunk", failing)
    project = make_project()
    with pytest.raises(RuntimeError, match="disk on fire"):
        service.import_batch(
            session=db,
            project=project,
            stream=io.BytesIO(jsonl([f"f{i}" for i in range(20)])),
            filename="f.jsonl",
            uploaded_by=None,
        )
    assert rows(db, project) == (0, 0, 0)


def _dead_pid() -> int:
    pid = 2**22 - 7
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_abandoned_loading_batches_are_removed_at_start(app, db, make_project):
    """A batch left 'loading' by a killed process: removed at the next start if its process (this host) is gone or
    its heartbeat is older than STALE_AFTER; one of a live process elsewhere, recently active, is kept."""
    project = make_project()
    here = service._OWNER.rpartition(":")[0]
    batches = {
        "dead process here": (f"{here}:{_dead_pid()}", utcnow()),
        "silent elsewhere": ("elsewhere:1", utcnow() - service.STALE_AFTER - timedelta(minutes=1)),
        "failed": ("elsewhere:1", utcnow()),
        "alive elsewhere": ("elsewhere:1", utcnow()),
    }
    for name, (owner, heartbeat) in batches.items():
        status = "failed" if name == "failed" else "loading"
        batch = ImportBatch(project_id=project.id, filename=name, status=status, owner=owner, updated_at=heartbeat)
        db.add(batch)
        db.flush()
        prompt = Prompt(project_id=project.id, batch_id=batch.id, external_id=name, messages=[], target_overlap=1, visible=False)
        db.add(prompt)
        db.flush()
        db.add(Response(prompt_id=prompt.id, position=0, text="r"))
    db.commit()
    with TestClient(app):
        pass
    db.rollback()
    assert list(db.scalars(select(ImportBatch.filename).where(ImportBatch.project_id == project.id))) == ["alive elsewhere"]
    assert list(db.scalars(select(Prompt.external_id).where(Prompt.project_id == project.id))) == ["alive elsewhere"]
    assert db.scalar(select(func.count()).select_from(Response)) == 1
