"""The task queue: fewest-served first, never over the overlap, leases that expire, one label per task."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from app.models import Annotation, Assignment, Prompt, Role
from app.models.base import utcnow
from app.prompts.references import ContentIndex
from app.prompts.service import ImportResult, _Judgements, _show, _write_chunk
from app.prompts.upload import ParsedPrompt, ParsedResponse


@pytest.fixture
def add_prompts(db):
    """Insert n prompts with k responses each straight through the import service."""
    from app.models import ImportBatch

    def add(project, n: int, k: int = 4) -> list[int]:
        batch = ImportBatch(project_id=project.id, filename="t", status="loading")
        db.add(batch)
        db.flush()
        chunk = [
            ParsedPrompt(
                location=f"line {i}",
                external_id=f"p{i}",
                messages=[{"role": "user", "content": f"prompt {i}"}],
                is_chat=False,
                responses=[ParsedResponse(f"r{i}-{j}", None, None) for j in range(k)],
                metadata=None,
            )
            for i in range(n)
        ]
        result, errors = ImportResult(), []
        judged = _Judgements(ContentIndex(project.id), None, errors.append)  # no judgements here: none attach
        _write_chunk(
            session=db,
            project_id=project.id,
            batch_id=batch.id,
            target=project.overlap,
            chunk=chunk,
            seen=set(),
            result=result,
            judged=judged,
        )
        assert errors == []
        _show(db, batch.id, result)  # the import's flip: the chunk's prompts visible
        db.commit()
        return list(db.scalars(select(Prompt.id).where(Prompt.project_id == project.id).order_by(Prompt.id)))

    return add


@pytest.fixture
def setup(make_user, make_project, bearer, add_prompts):
    def make(n_annotators=3, n_prompts=2, k=4, **project_fields):
        annotators = [make_user(Role.annotator) for _ in range(n_annotators)]
        project = make_project(members=annotators, **project_fields)
        prompt_ids = add_prompts(project, n_prompts, k)
        return project, [bearer(a) for a in annotators], prompt_ids

    return make


def next_task(client, project, headers):
    return client.get(f"/api/projects/{project.id}/next", headers=headers)


def rank_as_shown(task):
    return {"ranking": [[r["id"]] for r in task["responses"]]}


class TestNext:
    def test_task_shape_and_shown_order_is_stored(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        response = next_task(client, project, h)
        assert response.status_code == 200
        task = response.json()
        assert task["prompt"] == "prompt 0" and [r["label"] for r in task["responses"]] == ["A", "B", "C", "D"]
        db.rollback()
        stored = db.get(Assignment, task["task_id"])
        assert stored.shown_order == [r["id"] for r in task["responses"]]

    def test_asking_again_returns_the_current_lease(self, client, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=3)
        assert next_task(client, project, h).json()["task_id"] == next_task(client, project, h).json()["task_id"]

    def test_prefers_least_served_and_respects_overlap(self, client, setup):
        project, headers, prompt_ids = setup(n_annotators=5, n_prompts=2, overlap=2)
        got = [next_task(client, project, h) for h in headers]
        served = [r.json()["prompt_id"] for r in got[:4]]
        assert sorted(served[:2]) == prompt_ids  # both prompts get a first annotator before either gets a second
        assert sorted(served[2:]) == prompt_ids
        assert got[4].status_code == 204  # active leases count toward the overlap

    def test_no_prompt_twice_for_one_annotator_and_204_at_the_end(self, client, setup):
        project, (h,), prompt_ids = setup(n_annotators=1, n_prompts=3)
        seen = []
        while (response := next_task(client, project, h)).status_code == 200:
            task = response.json()
            seen.append(task["prompt_id"])
            assert (
                client.post(f"/api/tasks/{task['task_id']}/annotations", json=rank_as_shown(task), headers=h).status_code == 201
            )
        assert response.status_code == 204
        assert sorted(seen) == prompt_ids

    def test_random_order_per_assignment(self, client, setup):
        project, headers, _ = setup(n_annotators=12, n_prompts=1, k=6, overlap=12)
        orders = {tuple(r["id"] for r in next_task(client, project, h).json()["responses"]) for h in headers}
        assert len(orders) > 1  # 12 draws of 720 orders are all equal with probability 720^-11

    def test_expired_lease_returns_to_the_pool(self, client, db, setup):
        project, (a, b), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=1)
        task = next_task(client, project, a).json()
        assert next_task(client, project, b).status_code == 204
        db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        assert next_task(client, project, b).json()["prompt_id"] == prompt_id
        db.rollback()
        assert db.get(Assignment, task["task_id"]).status == "expired"
        assert db.get(Prompt, prompt_id).active_count == 1

    def test_own_expired_lease_is_renewed_in_place(self, client, db, setup):
        """The annotator whose lease ran out asks again: the same assignment row is leased anew (one row per
        prompt and annotator), not a second row beside it."""
        project, (a,), (prompt_id,) = setup(n_annotators=1, n_prompts=1, overlap=1)
        first = next_task(client, project, a).json()
        db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        again = next_task(client, project, a)
        assert again.status_code == 200 and again.json()["task_id"] == first["task_id"]
        assert again.json()["prompt_id"] == prompt_id and again.json()["lease_expires_at"] > first["lease_expires_at"]
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Assignment)) == 1
        assert db.get(Assignment, first["task_id"]).status == "leased"
        assert db.get(Prompt, prompt_id).active_count == 1

    def test_not_a_member_is_403_and_other_project_is_404(self, client, make_user, make_project, bearer):
        outsider = bearer(make_user(Role.annotator))
        project = make_project()
        assert next_task(client, project, outsider).status_code == 404
        researcher = make_user(Role.researcher)
        assert next_task(client, project, bearer(researcher)).status_code == 403


class TestSubmit:
    def submit(self, client, task_id, body, headers):
        return client.post(f"/api/tasks/{task_id}/annotations", json=body, headers=headers)

    def test_ranking_with_ties_is_stored_with_shown_order(self, client, db, setup):
        project, (h,), _ = setup(
            n_annotators=1, n_prompts=1, allow_ties=True, rating_criteria=[{"name": "helpfulness", "min": 1, "max": 7}]
        )
        task = next_task(client, project, h).json()
        ids = [r["id"] for r in task["responses"]]
        body = {
            "ranking": [[ids[2]], [ids[0], ids[3]], [ids[1]]],
            "rationale": "C is best",
            "time_spent_ms": 4200,
            "ratings": {"helpfulness": {str(ids[2]): 7, str(ids[1]): 2}},
        }
        response = self.submit(client, task["task_id"], body, h)
        assert response.status_code == 201, response.text
        db.rollback()
        stored = db.scalar(select(Annotation))
        assert stored.ranking == body["ranking"] and stored.shown_order == ids
        assert (stored.rationale, stored.time_spent_ms) == ("C is best", 4200)
        assert stored.ratings == {"helpfulness": {str(ids[2]): 7, str(ids[1]): 2}}
        assert db.get(Prompt, stored.prompt_id).completed_count == 1

    @pytest.mark.parametrize(
        ("make_body", "message"),
        [
            (lambda ids: {"ranking": [[i] for i in ids[:3]]}, "exactly once"),
            (lambda ids: {"ranking": [[i] for i in ids] + [[ids[0]]]}, "exactly once"),
            (lambda ids: {"ranking": [[ids[0], ids[1]], [ids[2]], [ids[3]]]}, "does not allow ties"),
            (lambda ids: {"ranking": [[i] for i in ids[:3]] + [[999999]]}, "exactly once"),
            (lambda ids: {"ranking": [[i] for i in ids] + [[]]}, "empty groups"),
            (lambda ids: {"ranking": []}, "exactly once"),
            (lambda ids: {"ranking": [[i] for i in ids], "ratings": {"nope": {}}}, "unknown criterion"),
            (lambda ids: {"chosen": ids[0], "rejected": ids[1]}, "ranking project"),
            (lambda ids: {}, "Send a ranking"),
            (lambda ids: {"flag": "harmful"}, "flag_reason"),
        ],
    )
    def test_invalid_rankings_are_422_with_reason(self, client, setup, make_body, message):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        response = self.submit(client, task["task_id"], make_body([r["id"] for r in task["responses"]]), h)
        assert response.status_code == 422
        assert message in response.json()["detail"]

    def test_pairwise_with_strength_and_tie(self, client, db, setup):
        project, (a, b), _ = setup(
            n_annotators=2,
            n_prompts=1,
            k=2,
            kind="pairwise",
            allow_ties=True,
            strength_scale=["much better", "better", "slightly better"],
        )
        task = next_task(client, project, a).json()
        x, y = (r["id"] for r in task["responses"])
        assert self.submit(client, task["task_id"], {"chosen": x, "rejected": y}, a).status_code == 422  # strength required
        assert self.submit(client, task["task_id"], {"chosen": x, "rejected": y, "strength": 3}, a).status_code == 422
        assert self.submit(client, task["task_id"], {"chosen": y, "rejected": x, "strength": 1}, a).status_code == 201
        other = next_task(client, project, b).json()
        assert self.submit(client, other["task_id"], {"tie": True}, b).status_code == 201
        db.rollback()
        stored = db.scalars(select(Annotation).order_by(Annotation.id)).all()
        assert (stored[0].ranking, stored[0].strength) == ([[y], [x]], 1)
        assert stored[1].ranking == [sorted([x, y])] and stored[1].strength is None

    def test_pairwise_rejects_ties_when_not_allowed(self, client, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1, k=2, kind="pairwise")
        task = next_task(client, project, h).json()
        response = self.submit(client, task["task_id"], {"tie": True}, h)
        assert response.status_code == 422 and "does not allow ties" in response.json()["detail"]

    def test_none_acceptable_and_flag_without_ranking(self, client, db, setup):
        project, (a, b), _ = setup(n_annotators=2, n_prompts=1)
        t1 = next_task(client, project, a).json()
        assert self.submit(client, t1["task_id"], {"none_acceptable": True}, a).status_code == 201
        t2 = next_task(client, project, b).json()
        assert (
            self.submit(client, t2["task_id"], {"flag": "harmful", "flag_reason": "gives dangerous advice"}, b).status_code == 201
        )
        db.rollback()
        flagged = db.scalar(select(Annotation).where(Annotation.flag.is_not(None)))
        assert (flagged.flag, flagged.flag_reason, flagged.ranking) == ("harmful", "gives dangerous advice", None)

    def test_double_submit_is_stored_once(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        first = self.submit(client, task["task_id"], rank_as_shown(task), h)
        second = self.submit(client, task["task_id"], rank_as_shown(task), h)
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json()["duplicate"] is True and second.json()["id"] == first.json()["id"]
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Annotation)) == 1
        assert db.scalar(select(Prompt.completed_count)) == 1

    def test_a_repeat_with_another_label_returns_the_stored_one(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        first = self.submit(client, task["task_id"], rank_as_shown(task), h)
        reversed_body = {"ranking": rank_as_shown(task)["ranking"][::-1]}
        repeat = self.submit(client, task["task_id"], reversed_body, h)
        assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
        assert repeat.json()["ranking"] == first.json()["ranking"] != reversed_body["ranking"]
        db.rollback()
        assert db.scalar(select(Annotation.ranking)) == first.json()["ranking"]

    def test_someone_elses_task_is_404(self, client, setup):
        project, (a, b), _ = setup(n_annotators=2, n_prompts=1)
        task = next_task(client, project, a).json()
        assert self.submit(client, task["task_id"], rank_as_shown(task), b).status_code == 404
        assert client.get(f"/api/tasks/{task['task_id']}", headers=b).status_code == 404

    def test_late_submit_accepted_only_while_the_prompt_needs_it(self, client, db, setup):
        project, (a, b, _c), _ = setup(n_annotators=3, n_prompts=1, overlap=1)
        task_a = next_task(client, project, a).json()
        db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        # Expired but not reclaimed yet: its slot is still held, so the label is accepted.
        assert self.submit(client, task_a["task_id"], rank_as_shown(task_a), a).status_code == 201

        assert next_task(client, project, b).status_code == 204  # overlap 1 reached

    def test_late_submit_after_reclaim_and_reassignment_is_409(self, client, db, setup):
        project, (a, b), _ = setup(n_annotators=2, n_prompts=1, overlap=1)
        task_a = next_task(client, project, a).json()
        db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        task_b = next_task(client, project, b).json()  # reclaims a's lease, gives the prompt to b
        late = self.submit(client, task_a["task_id"], rank_as_shown(task_a), a)
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        assert self.submit(client, task_b["task_id"], rank_as_shown(task_b), b).status_code == 201

    def test_late_submit_after_reclaim_with_room_is_accepted(self, client, db, setup):
        project, (a, _b), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=1)
        task_a = next_task(client, project, a).json()
        db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        from app.annotation.service import reclaim_expired_leases

        reclaim_expired_leases(session=db, project_id=project.id)
        db.commit()
        assert self.submit(client, task_a["task_id"], rank_as_shown(task_a), a).status_code == 201
        db.rollback()
        prompt = db.get(Prompt, prompt_id)
        assert (prompt.completed_count, prompt.active_count) == (1, 1)


class TestSkip:
    def test_skip_releases_and_is_not_offered_again(self, client, db, setup):
        project, (h,), _prompt_ids = setup(n_annotators=1, n_prompts=2)
        first = next_task(client, project, h).json()
        assert (
            client.post(f"/api/tasks/{first['task_id']}/skip", json={"reason": "not my language"}, headers=h).status_code == 204
        )
        second = next_task(client, project, h).json()
        assert second["prompt_id"] != first["prompt_id"]
        client.post(f"/api/tasks/{second['task_id']}/skip", headers=h)
        assert next_task(client, project, h).status_code == 204
        db.rollback()
        skipped = db.get(Assignment, first["task_id"])
        assert (skipped.status, skipped.skip_reason) == ("skipped", "not my language")
        assert db.get(Prompt, first["prompt_id"]).active_count == 0
        assert db.scalar(select(func.count()).select_from(Annotation)) == 0

    def test_skipped_task_cannot_be_submitted_and_done_cannot_be_skipped(self, client, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2)
        t1 = next_task(client, project, h).json()
        client.post(f"/api/tasks/{t1['task_id']}/skip", headers=h)
        assert client.post(f"/api/tasks/{t1['task_id']}/annotations", json=rank_as_shown(t1), headers=h).status_code == 409
        t2 = next_task(client, project, h).json()
        client.post(f"/api/tasks/{t2['task_id']}/annotations", json=rank_as_shown(t2), headers=h)
        assert client.post(f"/api/tasks/{t2['task_id']}/skip", headers=h).status_code == 409


class TestConcurrency:
    def test_many_annotators_at_once_never_exceed_overlap(self, app, db, setup):
        """16 threads, each its own annotator, loop next → submit; the counts must come out exact."""
        from fastapi.testclient import TestClient

        overlap, n_prompts = 3, 20
        project, headers, prompt_ids = setup(n_annotators=16, n_prompts=n_prompts, overlap=overlap)
        errors: list[str] = []

        def work(h):
            with TestClient(app) as client:
                for _ in range(n_prompts + 1):
                    response = client.get(f"/api/projects/{project.id}/next", headers=h)
                    if response.status_code == 204:
                        return
                    if response.status_code != 200:
                        errors.append(f"next {response.status_code} {response.text}")
                        return
                    task = response.json()
                    done = client.post(f"/api/tasks/{task['task_id']}/annotations", json=rank_as_shown(task), headers=h)
                    if done.status_code != 201:
                        errors.append(f"submit {done.status_code} {done.text}")

        threads = [threading.Thread(target=work, args=(h,)) for h in headers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        db.rollback()
        per_prompt = dict(db.execute(select(Annotation.prompt_id, func.count()).group_by(Annotation.prompt_id)).all())
        assert per_prompt == {pid: overlap for pid in prompt_ids}
        pairs = db.execute(select(Annotation.prompt_id, Annotation.annotator_id)).all()
        assert len(pairs) == len(set(pairs)) == overlap * n_prompts
        assert all(p.completed_count == p.active_count == overlap for p in db.scalars(select(Prompt)))


class TestQueueIndex:
    """ "Next" must not scan the project: the queue query is answered from the partial index of open prompts."""

    def queue_sql(self, db, project_id: int, annotator_id: int) -> str:
        from sqlalchemy import exists

        from app.models import Assignment, AssignmentStatus, Prompt, shown_in

        seen = exists().where(
            Assignment.prompt_id == Prompt.id,
            Assignment.annotator_id == annotator_id,
            Assignment.status != AssignmentStatus.expired,
        )
        query = (
            select(Prompt.id)
            .where(shown_in(project_id), Prompt.active_count < Prompt.target_overlap, ~seen)
            .order_by(Prompt.active_count, Prompt.id)
            .limit(1)
        )
        return str(query.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))

    def test_queue_query_uses_the_open_prompts_index(self, db, setup):
        project, _, _ = setup(n_prompts=3)
        sql = self.queue_sql(db, project.id, annotator_id=1)
        if db.get_bind().dialect.name == "postgresql":
            db.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: ask whether the index *can* answer
            plan = "\n".join(db.scalars(text("EXPLAIN " + sql)))
        else:
            plan = "\n".join(str(row[-1]) for row in db.execute(text("EXPLAIN QUERY PLAN " + sql)))
        db.rollback()
        assert "ix_prompts_open" in plan, plan

    def test_served_prompts_leave_the_index(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2, overlap=1)
        for _ in range(2):
            task = next_task(client, project, h).json()
            assert (
                client.post(f"/api/tasks/{task['task_id']}/annotations", json=rank_as_shown(task), headers=h).status_code == 201
            )
        assert next_task(client, project, h).status_code == 204
        db.rollback()
        assert (
            db.scalar(
                select(func.count())
                .select_from(Prompt)
                .where(Prompt.project_id == project.id, Prompt.active_count < Prompt.target_overlap)
            )
            == 0
        )


class TestMoreAnnotatorsThanThreads:
    def test_requests_beyond_the_threads_and_connections_all_complete(self, app, db, setup):
        """Twelve annotators at once against a server with two worker threads and one database connection.
        Requests wait for a database slot on the event loop. (When they waited inside the threads instead, for a
        connection or for SQLite's write lock, the request holding it waited for a free thread and nothing
        moved until the pool or busy timeout, 30 s; the load benchmark saw 500s at 100 annotators on one worker.)"""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        import anyio.to_thread
        import httpx2

        from app.config import get_settings
        from app.db import Database

        project, headers, _ = setup(n_annotators=12, n_prompts=12)
        shared = app.state.database
        app.state.database = Database(get_settings().model_copy(update={"DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0}))

        async def label(client, h) -> tuple[int, int]:
            task = await client.get(f"/api/projects/{project.id}/next", headers=h)
            stored = await client.post(
                f"/api/tasks/{task.json()['task_id']}/annotations", json=rank_as_shown(task.json()), headers=h
            )
            return task.status_code, stored.status_code

        async def everyone() -> list[tuple[int, int]]:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 2
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
                return await asyncio.wait_for(asyncio.gather(*(label(client, h) for h in headers)), timeout=20)

        try:
            with ThreadPoolExecutor(1) as thread:  # its own event loop, even where one runs (Playwright's)
                results = thread.submit(asyncio.run, everyone()).result()
        finally:
            app.state.database.dispose()
            app.state.database = shared
        assert results == [(200, 201)] * 12
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Annotation).where(Annotation.project_id == project.id)) == 12

    def test_the_thread_pool_stays_above_the_database_slots(self, database):
        """Requests holding a slot must always find a thread, however large the pool is configured."""
        import anyio.to_thread
        from fastapi.testclient import TestClient

        from app.config import get_settings
        from app.main import create_app

        app = create_app(get_settings().model_copy(update={"DB_POOL_SIZE": 45, "DB_MAX_OVERFLOW": 5}))
        with TestClient(app) as client:
            tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
        assert tokens > app.state.database.request_slots == (1 if database.engine.dialect.name == "sqlite" else 50)
