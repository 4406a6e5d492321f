"""Large uploads are imported in a child process (app/prompts/processes.py): the same answers and rows as an import in
the server's thread, errors included, and a child killed half-way leaves nothing behind. The threshold is lowered so
small files take the child's path; which process wrote a batch is its `owner` (host:pid)."""

import asyncio
import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from sqlalchemy import func, select

from app.errors import NotFound
from app.models import ImportBatch, Prompt, ReferenceLabel, Response, Role
from app.projects import service as projects_service
from app.prompts import processes, service
from app.prompts.upload import ImportLimits


def jsonl(*rows) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def upload(client, project_id, content: bytes, headers, **params):
    files = {"file": ("batch.jsonl", io.BytesIO(content))}
    return client.post(f"/api/projects/{project_id}/imports", params=params, files=files, headers=headers)


def stored(db, project_id, *, shuffled: bool = False) -> tuple[list, list]:
    """The project's rows: (prompts with their responses, reference labels by text). `shuffled`: responses in any
    order (a preference pair's two are placed at random)."""
    db.rollback()
    prompts = db.execute(
        select(Prompt.id, Prompt.external_id, Prompt.messages, Prompt.is_chat, Prompt.metadata_, Prompt.visible)
        .where(Prompt.project_id == project_id)
        .order_by(Prompt.external_id)
    ).all()
    texts = dict(db.execute(select(Response.id, Response.text)).all())
    shown = []
    for prompt_id, *fields in prompts:
        responses = db.execute(
            select(Response.text, Response.model, Response.metadata_)
            .where(Response.prompt_id == prompt_id)
            .order_by(Response.position)
        ).all()
        shown.append((*fields, sorted(map(tuple, responses)) if shuffled else [tuple(r) for r in responses]))
    labels = db.execute(
        select(Prompt.external_id, ReferenceLabel.source, ReferenceLabel.ranking)
        .join(ReferenceLabel, ReferenceLabel.prompt_id == Prompt.id)
        .where(Prompt.project_id == project_id)
        .order_by(Prompt.external_id)
    ).all()
    return shown, [(ext, source, [sorted(texts[i] for i in tier) for tier in ranking]) for ext, source, ranking in labels]


def owners(db, project_id) -> list[str]:
    db.rollback()
    return list(db.scalars(select(ImportBatch.owner).where(ImportBatch.project_id == project_id)))


@pytest.fixture
def staff(make_user, bearer):
    return bearer(make_user(Role.researcher))


@pytest.fixture
def in_child(monkeypatch):
    monkeypatch.setattr(processes, "LARGE_UPLOAD_BYTES", 0)


PROMPTS = jsonl(
    {"id": "a", "prompt": "Hi?", "responses": ["r1", "r2", "r3"], "metadata": {"src": "x"}},
    {
        "id": "b",
        "prompt": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Why?"}],
        "responses": [{"text": "Because.", "model": "m-1", "metadata": {"t": 0.7}}, "No idea"],
    },
    {"prompt": "no id", "responses": ["x", "y"]},
)
PAIRS = jsonl(
    {"prompt": "Q1", "chosen": "good 1", "rejected": "bad 1"},
    {"prompt": "Q2", "chosen": "good 2", "rejected": "bad 2"},
)


def test_a_child_imports_as_the_thread_does(client, db, make_project, staff, monkeypatch):
    in_thread, in_process = make_project(), make_project()
    pairs_in_thread, pairs_in_process = make_project(kind="pairwise"), make_project(kind="pairwise")
    answers = {}
    for project, pairs in ((in_thread, pairs_in_thread), (in_process, pairs_in_process)):
        if project is in_process:
            monkeypatch.setattr(processes, "LARGE_UPLOAD_BYTES", 0)
        answers[project.id] = [
            upload(client, project.id, PROMPTS, staff),
            upload(client, pairs.id, PAIRS, staff, format="trl", source="judge"),
            upload(client, project.id, PROMPTS, staff),  # all skipped
        ]
    thread_answers, process_answers = answers[in_thread.id], answers[in_process.id]
    assert [a.status_code for a in process_answers] == [200, 200, 200]
    for thread_answer, process_answer in zip(thread_answers, process_answers, strict=True):
        assert process_answer.json() | {"batch_id": 0} == thread_answer.json() | {"batch_id": 0}
    assert [a.json()["imported"] for a in process_answers] == [3, 2, 0]
    assert process_answers[1].json()["references"] == 2
    assert stored(db, in_process.id) == stored(db, in_thread.id)
    assert stored(db, pairs_in_process.id, shuffled=True) == stored(db, pairs_in_thread.id, shuffled=True)
    labels = sorted((source, ranking) for _, source, ranking in stored(db, pairs_in_process.id)[1])
    assert labels == [("judge", [["good 1"], ["bad 1"]]), ("judge", [["good 2"], ["bad 2"]])]
    assert all(prompt[-2] for prompt in stored(db, in_process.id)[0])  # visible
    # Written by a child of the server, not the server's own process.
    assert owners(db, in_thread.id) == [service._OWNER] * 2
    assert set(owners(db, in_process.id)) != {service._OWNER} and len(owners(db, in_process.id)) == 2


def test_the_threshold_is_the_upload_size(client, db, make_project, staff, monkeypatch):
    project = make_project()
    monkeypatch.setattr(processes, "LARGE_UPLOAD_BYTES", len(PROMPTS) + 1)
    assert upload(client, project.id, PROMPTS, staff).status_code == 200
    assert owners(db, project.id) == [service._OWNER]
    assert client.app.state.import_processes._pool is None  # no child was started
    monkeypatch.setattr(processes, "LARGE_UPLOAD_BYTES", len(PROMPTS))
    other = make_project()
    assert upload(client, other.id, PROMPTS, staff).status_code == 200
    assert owners(db, other.id) != [service._OWNER]


def test_errors_by_line_and_field_come_back_with_nothing_stored(client, db, make_project, staff, in_child):
    project = make_project(kind="pairwise")
    content = jsonl(
        *[{"id": f"ok{i}", "prompt": "p", "responses": ["a", "b"]} for i in range(2500)],  # 2 chunks written first
        {"id": "bad1", "prompt": "p", "responses": ["a", "b", "c"]},
        {"id": "bad2", "prompt": "", "responses": ["a", "b"]},
    )
    response = upload(client, project.id, content, staff)
    assert response.status_code == 422
    body = response.json()
    assert body["imported"] == 0 and body["total_errors"] == 2 and body["detail"].startswith("Nothing imported: 2 error(s)")
    assert body["errors"][0].startswith('line 2501, field "responses"')
    assert body["errors"][1].startswith('line 2502, field "prompt"')
    assert stored(db, project.id) == ([], [])
    assert owners(db, project.id) == []


def test_a_closed_project_answers_as_from_the_thread(client, db, make_project, staff, in_child, monkeypatch):
    project = make_project()
    projects_service.set_archived(session=db, project=project, archived=True, user=None)
    db.commit()
    calls = []
    original = processes.ImportProcesses.import_file

    async def spied(self, path, **arguments):
        calls.append(path)
        return await original(self, path, **arguments)

    monkeypatch.setattr(processes.ImportProcesses, "import_file", spied)
    response = upload(client, project.id, PROMPTS, staff)
    assert response.status_code == 409 and "archived" in response.json()["detail"]  # raised by import_file, in the child
    assert len(calls) == 1 and owners(db, project.id) == []


def run_on_a_loop_of_its_own(coroutine):
    """asyncio.run in a thread: in a full run the browser tests' sync Playwright keeps an event loop on this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_an_app_error_of_the_child_is_raised_in_the_server(app, tmp_path):
    data = tmp_path / "b.jsonl"
    data.write_bytes(PROMPTS)
    children = processes.ImportProcesses(app.state.settings)
    try:
        with data.open("rb") as stream, pytest.raises(NotFound, match="Project not found"):
            run_on_a_loop_of_its_own(
                children.import_file(
                    stream,
                    project_id=10**9,
                    filename="b.jsonl",
                    uploaded_by_id=None,
                    limits=ImportLimits.from_settings(app.state.settings),
                )
            )
    finally:
        children.stop()


def test_the_child_reads_the_upload_after_the_request_has_closed_it(app, db, make_project, tmp_path):
    """A request cancelled while its child starts (or waits its turn) closes its file: the child has its own."""
    project = make_project()
    data = tmp_path / "b.jsonl"
    data.write_bytes(PROMPTS)
    children = processes.ImportProcesses(app.state.settings)
    limits = ImportLimits.from_settings(app.state.settings)

    async def closed_at_once() -> service.ImportResult:
        with data.open("rb") as stream:
            task = asyncio.ensure_future(
                children.import_file(stream, project_id=project.id, filename="b.jsonl", uploaded_by_id=None, limits=limits)
            )
            await asyncio.sleep(0)  # submitted; the child takes far longer to start
        return await task

    try:
        assert run_on_a_loop_of_its_own(closed_at_once()).imported == 3
    finally:
        children.stop()
    assert len(stored(db, project.id)[0]) == 3


def two_chunks_written_through(pipe, database, project_id: int) -> tuple[int, str]:
    """Feeds the child's upload through `pipe` until it has written two chunks and waits for the rest (2,500 prompts are
    in the pipe, its end is not): the pipe's writing end, and the owner (host:pid) of the batch."""
    deadline = time.monotonic() + 60
    while True:  # the child opens the pipe for reading once it has started
        try:
            writer = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert time.monotonic() < deadline, "the child never opened the upload"
            time.sleep(0.05)
    os.set_blocking(writer, True)
    os.write(writer, jsonl(*[{"id": f"k{i}", "prompt": f"p{i}", "responses": ["a", "b"]} for i in range(2500)]))
    while True:
        with database.read_engine.connect() as connection:
            written = connection.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id))
            owner = connection.scalar(select(ImportBatch.owner).where(ImportBatch.project_id == project_id))
        if written >= 2 * service.CHUNK_SIZE:
            return writer, owner
        assert time.monotonic() < deadline, "the child never wrote two chunks"
        time.sleep(0.05)


# A server process that hands its upload (the pipe, argv[2]) to a child and waits for the answer.
SERVER = """
import asyncio, os, pickle, sys
from app.prompts import processes
settings, pipe, project_id = pickle.load(open(sys.argv[1], "rb")), sys.argv[2], int(sys.argv[3])
processes._path_of = lambda descriptor: pipe
children = processes.ImportProcesses(settings)
with open(os.devnull, "rb") as stream:
    asyncio.run(children.import_file(stream, project_id=project_id, filename="b.jsonl", uploaded_by_id=None))
"""


def test_a_child_whose_server_dies_midway_shows_nothing_and_removes_its_rows(app, database, db, make_project, tmp_path):
    """Killed mid-import, an import in the server's thread dies with it; one in a child stops at its next chunk (it
    would otherwise show a batch whose uploader got no answer) and removes what it wrote, before it ends."""
    project = make_project()
    pipe, settings = tmp_path / "upload", tmp_path / "settings.pickle"
    os.mkfifo(pipe)
    settings.write_bytes(pickle.dumps(app.state.settings))
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(settings), str(pipe), str(project.id)])
    try:
        writer, owner = two_chunks_written_through(pipe, database, project.id)
        assert int(owner.rpartition(":")[2]) not in (server.pid, os.getpid())  # the child writes
        server.kill()
        server.wait(60)
        os.close(writer)  # the child reads the rest of the upload: its third chunk would make the batch visible
        deadline = time.monotonic() + 60
        while not service._process_gone(owner):
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.05)
    finally:
        server.kill()
    assert stored(db, project.id) == ([], []) and owners(db, project.id) == []


def test_a_child_killed_midway_answers_500_and_leaves_no_rows(
    client, database, db, make_project, staff, in_child, tmp_path, monkeypatch
):
    """The child reads the upload from a pipe the test feeds: it has written two chunks and waits for the third when
    it is killed."""
    project = make_project()
    pipe = tmp_path / "upload"
    os.mkfifo(pipe)
    monkeypatch.setattr(processes, "_path_of", lambda descriptor: str(pipe))  # what the child opens
    answer: dict = {}
    uploader = threading.Thread(target=lambda: answer.update(response=upload(client, project.id, b"x", staff)))
    uploader.start()
    try:
        writer, owner = two_chunks_written_through(pipe, database, project.id)
        child = int(owner.rpartition(":")[2])
        assert child != os.getpid()
        os.kill(child, signal.SIGKILL)
        os.close(writer)
    finally:
        uploader.join(60)
    response = answer["response"]
    assert response.status_code == 500
    assert "stopped before it finished" in response.json()["detail"] and "Upload the file again" in response.json()["detail"]
    # Its batch was removed at once; the next import or start would have: its owner, the child, is gone (reaped).
    assert stored(db, project.id) == ([], []) and owners(db, project.id) == []
    assert service._process_gone(owner)
    # The next large upload starts another child.
    monkeypatch.undo()
    monkeypatch.setattr(processes, "LARGE_UPLOAD_BYTES", 0)
    assert upload(client, project.id, PROMPTS, staff).json()["imported"] == 3


def test_an_idle_child_stops_and_the_next_large_upload_starts_another(client, db, make_project, staff, in_child, monkeypatch):
    """An idle child holds its memory (~90 MB): it stops IDLE_SECONDS after the last large import."""
    monkeypatch.setattr(processes, "IDLE_SECONDS", 0.2)
    children = client.app.state.import_processes
    first, second = make_project(), make_project()
    assert upload(client, first.id, PROMPTS, staff).json()["imported"] == 3
    (child,) = owners(db, first.id)
    deadline = time.monotonic() + 60
    while children._pool is not None or not service._process_gone(child):
        assert time.monotonic() < deadline, "the idle child never stopped"
        time.sleep(0.05)
    assert upload(client, second.id, PROMPTS, staff).json()["imported"] == 3
    (another,) = owners(db, second.id)
    assert another != child and not service._process_gone(another)


def test_a_child_with_an_import_in_hand_is_not_stopped_as_idle(app, monkeypatch):
    monkeypatch.setattr(processes, "IDLE_SECONDS", 3600)
    children = processes.ImportProcesses(app.state.settings)
    try:
        pool = children._started()  # an import in hand
        children._stop_if_idle(pool)  # a timer of an earlier idle spell firing now
        assert children._pool is pool
        children._finished(pool)
        assert children._idle is not None and children._idle.is_alive()  # idle from now on: the timer runs
        assert children._started() is pool and children._idle is None  # the next import takes the same child
        children._finished(pool)
        timer = children._idle
        assert timer is not None
        timer.cancel()  # fired by hand instead:
        children._stop_if_idle(pool)
        assert children._pool is None  # idle: stopped
    finally:
        children.stop()
