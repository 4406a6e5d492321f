"""Issue #11, item 9: heavy reads (agreement reports, exports) are bounded per user across app processes: the
database holds one row per request in progress (app/heavy.py); one more than HEAVY_REQUESTS_PER_USER gets 429
with Retry-After, other users are not affected, a slot is freed when the work ends, and stale rows don't count."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.config import get_settings
from app.heavy import HeavySlot, TooManyHeavyRequests, acquire
from app.models import HeavyRequest, Role
from app.models.base import utcnow

LIMIT = get_settings().HEAVY_REQUESTS_PER_USER
AGREEMENT_API, AGREEMENT_PAGE, EXPORT = "/api/projects/{}/agreement", "/projects/{}/agreement", "/api/projects/{}/export"
HEAVY = [
    (AGREEMENT_API, {}),
    (AGREEMENT_PAGE, {}),
    (EXPORT, {"format": "trl"}),
    (EXPORT, {"format": "trl", "file_type": "parquet"}),
    (EXPORT, {"format": "trl", "folder": "true"}),
    ("/api/projects/{}/leaderboard", {}),
    ("/projects/{}/leaderboard", {}),
    ("/api/projects/{}/reward-models", {}),
    ("/projects/{}/reward-models", {}),
]


def hold(db, user, n: int, *, stale: bool = False) -> None:
    """n slots of `user` taken by requests elsewhere (other processes); stale: left by killed processes."""
    now = utcnow()
    expires = now - timedelta(seconds=1) if stale else now + timedelta(minutes=10)
    db.add_all(HeavyRequest(user_id=user.id, kind="export", started_at=now, expires_at=expires) for _ in range(n))
    db.commit()


def held(db, user=None) -> int:
    db.rollback()
    query = select(func.count()).select_from(HeavyRequest)
    return db.scalar(query if user is None else query.where(HeavyRequest.user_id == user.id))


@pytest.fixture
def staff(make_user):
    return make_user(Role.researcher)


@pytest.fixture
def project(make_project):
    return make_project(kind="pairwise")


@pytest.mark.parametrize(("url", "params"), HEAVY)
def test_one_more_than_the_limit_is_429_with_retry_after(client, db, bearer, make_user, staff, project, url, params):
    hold(db, staff, LIMIT)
    response = client.get(url.format(project.id), params=params, headers=bearer(staff))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "10"
    assert f"You already have {LIMIT} reports or exports running" in response.json()["detail"]
    assert held(db, staff) == LIMIT  # the refused request took no slot
    # Another user is not affected, and gets the slot back when done.
    other = make_user(Role.admin)
    assert client.get(url.format(project.id), params=params, headers=bearer(other)).status_code == 200
    assert held(db, other) == 0


def test_the_page_says_429_too(db, login_as, staff, project):
    hold(db, staff, LIMIT)
    page = login_as(staff).get(AGREEMENT_PAGE.format(project.id), headers={"Accept": "text/html"})
    assert page.status_code == 429 and page.headers["retry-after"] == "10"
    assert "reports or exports running" in page.text and page.template.name == "errors/page.html"


@pytest.mark.parametrize(("url", "params"), HEAVY)
def test_a_slot_is_freed_when_the_work_ends(client, db, bearer, staff, project, url, params):
    hold(db, staff, LIMIT - 1)  # one left: used and given back, again and again
    headers = bearer(staff)
    for _ in range(3):
        assert client.get(url.format(project.id), params=params, headers=headers).status_code == 200
        assert held(db, staff) == LIMIT - 1


@pytest.mark.parametrize("page", [False, True])
def test_a_score_upload_is_heavy_refused_before_anything_is_stored(client, db, bearer, login_as, staff, project, page):
    from app.models import RewardModel

    def send():
        files = {"file": ("s.jsonl", b'{"prompt_id": "nowhere", "response": 0, "score": 1}')}
        if page:
            return login_as(staff).post(f"/projects/{project.id}/reward-models", data={"name": "rm"}, files=files)
        return client.post(f"/api/projects/{project.id}/reward-models", params={"name": "rm"}, files=files, headers=bearer(staff))

    hold(db, staff, LIMIT)
    refused = send()
    assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    assert held(db, staff) == LIMIT and db.scalar(select(func.count()).where(RewardModel.project_id == project.id)) == 0
    db.execute(HeavyRequest.__table__.delete())
    db.commit()
    assert send().status_code == 422  # through to the upload (its one line matches no prompt), and the slot freed
    assert held(db, staff) == 0


def test_a_refused_request_frees_its_slot(client, db, bearer, staff, project):
    assert client.get(EXPORT.format(project.id), params={"format": "nope"}, headers=bearer(staff)).status_code == 422
    assert held(db, staff) == 0


def test_stale_slots_do_not_count_and_are_cleared(client, db, bearer, staff, project):
    hold(db, staff, LIMIT + 3, stale=True)
    assert client.get(AGREEMENT_API.format(project.id), headers=bearer(staff)).status_code == 200
    assert held(db, staff) == 0


def test_annotators_get_their_404_and_take_no_slot(client, db, bearer, make_user, project):
    annotator = make_user(Role.annotator)
    assert client.get(EXPORT.format(project.id), params={"format": "trl"}, headers=bearer(annotator)).status_code == 404
    assert held(db) == 0


def test_a_stream_the_client_leaves_frees_its_slot(database, db, staff):
    """What Starlette does when the client disconnects: the body's async iterator is closed mid-stream."""
    hold(db, staff, 1)
    row_id = db.scalar(select(HeavyRequest.id).where(HeavyRequest.user_id == staff.id))
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield b"row\n"
        finally:
            closed.set()

    async def read_one_then_leave():
        slot = HeavySlot(row_id=row_id, make_session=database.sessionmaker, request_session=None)
        body = slot.hold_while(endless())
        assert await body.__anext__() == b"row\n"
        assert held(db, staff) == 1
        await body.aclose()

    with ThreadPoolExecutor(1) as pool:  # its own thread: the browser tests may leave an event loop in this one
        pool.submit(asyncio.run, read_one_then_leave()).result()
    assert closed.is_set() and held(db, staff) == 0


def test_concurrent_acquires_never_pass_the_limit(database, db, staff):
    """Many requests of one user at the same moment, each in its own transaction as in the app: exactly LIMIT
    get a slot. On PostgreSQL the advisory lock makes the count-then-insert atomic; on SQLite the write lock."""
    n = 16
    start, outcomes = threading.Barrier(n), []

    def request() -> None:
        start.wait()
        try:
            with database.sessionmaker() as session, session.begin():
                acquire(
                    session=session,
                    make_session=database.sessionmaker,
                    user_id=staff.id,
                    kind="agreement",
                    limit=LIMIT,
                    stale_minutes=10,
                )
            outcomes.append("slot")
        except TooManyHeavyRequests:
            outcomes.append("429")

    threads = [threading.Thread(target=request) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["429"] * (n - LIMIT) + ["slot"] * LIMIT
    assert held(db, staff) == LIMIT


def test_slow_reports_running_at_once_hold_the_slots(client, db, database, bearer, staff, project, monkeypatch):
    """Over HTTP: LIMIT slow reports of one user run at once (each holds a slot while it works), the next one is
    refused, and the slots come back when they finish. PostgreSQL only: on SQLite request transactions hold the
    write lock, so requests run one at a time and a slow report would block the one that should be refused."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent request transactions (PostgreSQL)")
    from app.agreement import service

    go, report = threading.Event(), service.project_report
    monkeypatch.setattr(service, "project_report", lambda **kw: go.wait(30) and report(**kw))
    headers, statuses = bearer(staff), []
    running = [
        threading.Thread(
            target=lambda: statuses.append(client.get(AGREEMENT_API.format(project.id), headers=headers).status_code)
        )
        for _ in range(LIMIT)
    ]
    for t in running:
        t.start()
    try:
        for _ in range(300):
            if held(db, staff) == LIMIT:
                break
            threading.Event().wait(0.02)
        refused = client.get(EXPORT.format(project.id), params={"format": "trl"}, headers=headers)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    finally:
        go.set()
        for t in running:
            t.join()
    assert statuses == [200] * LIMIT and held(db, staff) == 0
