"""The queue's behaviour in full detail (issue #12, item 8: the survivors of the queue's mutation run, TESTING.md):
every field of a task and of a stored label, the messages of conflicts, lease lengths, which queue a claim tries
first, skips, the done count. Through the API where the app does it, through the service where the service alone
promises it (one session for a claim and its label, a racing second submit)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from app.annotation import service
from app.annotation.schemas import AnnotationCreate
from app.errors import Conflict
from app.models import Annotation, Assignment, AssignmentStatus, Project, ProjectMember, Prompt, Response, Role, User
from app.models.base import as_utc, utcnow
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task, rank_as_shown

add_prompts, setup = test_queue.add_prompts, test_queue.setup  # the queue tests' fixtures

CRITERIA = [{"name": "helpfulness", "min": 1, "max": 7}]
SCALE = ["much better", "better", "slightly better"]


def submit(client, task_id: int, body: dict, headers):
    return client.post(f"/api/tasks/{task_id}/annotations", json=body, headers=headers)


def skip(client, task_id: int, headers, reason: str | None = None):
    return client.post(f"/api/tasks/{task_id}/skip", json=None if reason is None else {"reason": reason}, headers=headers)


def when(value: str | datetime) -> datetime:
    """A timestamp from the API (ISO text) or the database (naive on SQLite), in UTC."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def member(db, project: Project) -> User:
    """The project's first annotator, for calling the service directly."""
    return db.scalars(
        select(User).join(ProjectMember, ProjectMember.user_id == User.id).where(ProjectMember.project_id == project.id)
    ).first()


def set_prompts(db, prompt_ids, **values) -> None:
    db.execute(update(Prompt).where(Prompt.id.in_(prompt_ids)).values(**values))
    db.commit()


def expire_all(db) -> None:
    db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()


class TestTaskView:
    def test_every_field_of_a_pairwise_task(self, client, db, setup):
        project, (h,), (prompt_id,) = setup(
            n_annotators=1, n_prompts=1, k=2, kind="pairwise", allow_ties=True, strength_scale=SCALE, rating_criteria=CRITERIA
        )
        task = next_task(client, project, h).json()
        db.rollback()
        lease = db.scalar(select(Assignment))
        texts = dict(db.execute(select(Response.id, Response.text)).all())
        assert task == {
            "task_id": lease.id,
            "project_id": project.id,
            "kind": "pairwise",
            "prompt_id": prompt_id,
            "prompt": "prompt 0",
            "responses": [
                {"id": rid, "text": texts[rid], "label": label} for rid, label in zip(lease.shown_order, "AB", strict=True)
            ],
            "allow_ties": True,
            "strength_scale": SCALE,
            "rating_criteria": db.get(Project, project.id).rating_criteria,
            "lease_expires_at": task["lease_expires_at"],
        }
        assert [c["name"] for c in task["rating_criteria"]] == ["helpfulness"]
        assert when(task["lease_expires_at"]) == when(lease.lease_expires_at)
        # Asked by id, the task looks the same.
        assert client.get(f"/api/tasks/{lease.id}", headers=h).json() == task

    def test_a_ranking_task_without_options(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1, k=3)
        task = next_task(client, project, h).json()
        assert (task["kind"], task["allow_ties"], task["strength_scale"], task["rating_criteria"]) == (
            "ranking",
            False,
            None,
            None,
        )
        assert [r["label"] for r in task["responses"]] == ["A", "B", "C"]
        assert {r["text"] for r in task["responses"]} == {"r0-0", "r0-1", "r0-2"}

    def test_a_chat_prompt_is_shown_as_its_messages_and_a_plain_one_as_text(self, client, db, setup):
        chat = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "second question"},
        ]
        project, (h, h2), (chat_id, plain_id) = setup(n_annotators=2, n_prompts=2, overlap=1)
        set_prompts(db, [chat_id], messages=chat, is_chat=True)
        set_prompts(db, [plain_id], messages=chat, is_chat=False)
        shown = {
            t["prompt_id"]: t["prompt"] for t in (next_task(client, project, h).json(), next_task(client, project, h2).json())
        }
        assert shown == {chat_id: chat, plain_id: "second question"}  # plain: the last user message


class TestLease:
    def test_a_lease_lasts_the_configured_minutes(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2)
        before = utcnow()
        task = next_task(client, project, h).json()
        db.rollback()
        lease = db.get(Assignment, task["task_id"])
        assert when(lease.lease_expires_at) - when(lease.leased_at) == timedelta(minutes=30)  # LEASE_MINUTES
        assert before <= when(lease.leased_at) <= utcnow()
        assert (lease.status, lease.annotator_id, lease.project_id) == ("leased", member(db, project).id, project.id)

    def test_the_service_takes_the_lease_length(self, db, setup):
        project, _, _ = setup(n_annotators=1, n_prompts=1)
        lease = service.next_task(session=db, project=project, annotator=member(db, project), lease_minutes=7)
        assert when(lease.lease_expires_at) - when(lease.leased_at) == timedelta(minutes=7)
        db.commit()
        db.expire_all()
        stored = db.get(Assignment, lease.id)
        assert when(stored.lease_expires_at) - when(stored.leased_at) == timedelta(minutes=7)

    @pytest.mark.parametrize(
        "left, seconds",
        [(timedelta(seconds=90, milliseconds=600), 90), (timedelta(minutes=30), 1799), (timedelta(seconds=-5), 0)],
    )
    def test_seconds_left(self, left, seconds):
        expires = utcnow() + left
        assert service.lease_seconds_left(Assignment(lease_expires_at=expires)) == seconds
        assert service.lease_seconds_left(Assignment(lease_expires_at=expires.replace(tzinfo=None))) == seconds  # SQLite's

    def test_an_expired_lease_held_by_nobody_gives_nothing_back_twice(self, client, db, setup):
        project, (a, _b), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=1)
        next_task(client, project, a)
        expire_all(db)
        db.rollback()
        assert service.reclaim_expired_leases(session=db, project_id=project.id) == 1
        db.commit()
        assert service.reclaim_expired_leases(session=db, project_id=project.id) == 0
        db.commit()
        assert db.get(Prompt, prompt_id, populate_existing=True).active_count == 0


class TestOneSession:
    """A caller may claim in a session that already holds the rows (the service's statements bypass the unit of
    work): what the claim and the lease wrote replaces what the session held."""

    def test_the_claimed_prompt_shows_the_row_as_claimed(self, database, db, setup):
        project, _, (prompt_id,) = setup(n_annotators=1, n_prompts=1)
        prompt = db.get(Prompt, prompt_id)
        db.commit()  # the session keeps the prompt as read (expire_on_commit=False)
        with database.sessionmaker() as other, other.begin():  # meanwhile another request marks it gold
            other.execute(update(Prompt).where(Prompt.id == prompt_id).values(is_gold=True, target_overlap=5))
        assert (prompt.is_gold, prompt.target_overlap, prompt.active_count) == (False, 3, 0)
        lease = service.next_task(session=db, project=project, annotator=member(db, project), lease_minutes=30)
        assert lease.prompt_id == prompt_id
        assert (prompt.is_gold, prompt.target_overlap, prompt.active_count) == (True, 5, 1)

    def test_a_renewed_lease_shows_its_new_expiry(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        expire_all(db)
        service.reclaim_expired_leases(session=db, project_id=project.id)
        db.commit()
        old = db.get(Assignment, task["task_id"])
        assert old.status == "expired"
        lease = service.next_task(session=db, project=project, annotator=member(db, project), lease_minutes=30)
        assert lease is old and lease.status == "leased" and when(lease.lease_expires_at) > utcnow() + timedelta(minutes=29)


class TestRelease:
    def test_release_ends_the_open_leases_now_and_only_those(self, client, db, setup):
        project, (a, b), prompt_ids = setup(n_annotators=2, n_prompts=3)
        done = next_task(client, project, a).json()
        assert submit(client, done["task_id"], rank_as_shown(done), a).status_code == 201
        held = next_task(client, project, a).json()
        other = next_task(client, project, b).json()
        db.rollback()
        annotator_id = db.get(Assignment, held["task_id"]).annotator_id
        before = utcnow()
        assert service.release_leases(session=db, project_id=project.id, annotator_id=annotator_id) == 1
        db.commit()
        db.expire_all()
        released = db.get(Assignment, held["task_id"])
        assert released.status == "expired" and before <= when(released.lease_expires_at) <= utcnow()
        assert db.get(Assignment, done["task_id"]).status == "done"
        assert db.get(Assignment, other["task_id"]).status == "leased"
        counts = {p: db.get(Prompt, p).active_count for p in prompt_ids}
        assert counts[held["prompt_id"]] == (1 if held["prompt_id"] == other["prompt_id"] else 0)

    def test_release_keeps_the_annotators_leases_in_other_projects(
        self, client, db, make_user, make_project, bearer, add_prompts
    ):
        annotator = make_user(Role.annotator)
        projects = [make_project(members=[annotator]) for _ in range(2)]
        for project in projects:
            add_prompts(project, 1, 2)
        tasks = [next_task(client, project, bearer(annotator)).json() for project in projects]
        db.rollback()
        assert service.release_leases(session=db, project_id=projects[0].id, annotator_id=annotator.id) == 1
        db.commit()
        db.expire_all()
        assert [db.get(Assignment, t["task_id"]).status for t in tasks] == ["expired", "leased"]
        assert [db.get(Prompt, t["prompt_id"]).active_count for t in tasks] == [0, 1]

    def test_a_claim_stays_in_its_project(self, client, db, make_user, make_project, bearer, add_prompts):
        annotator = make_user(Role.annotator)
        full, empty = make_project(members=[annotator]), make_project(members=[annotator])
        add_prompts(full, 2, 2)
        assert next_task(client, empty, bearer(annotator)).status_code == 204  # the other project's prompts are not its


class TestClaimOrder:
    def test_an_adaptive_project_serves_a_boosted_prompt_first(self, client, db, setup):
        # The boosted prompt has more annotators than the others, so only the boosted queue picks it.
        project, headers, prompt_ids = setup(n_annotators=3, n_prompts=3, overlap=2, adaptive_threshold=0.5, max_overlap=3)
        set_prompts(db, prompt_ids[1:], boosted=True, target_overlap=3, active_count=2)
        served = [next_task(client, project, h).json()["prompt_id"] for h in headers]
        assert served == [prompt_ids[1], prompt_ids[2], prompt_ids[0]]  # boosted ones first, lowest id first; then the rest

    def test_a_boosted_prompt_at_its_target_is_not_served(self, client, db, setup):
        project, (h, h2), prompt_ids = setup(n_annotators=2, n_prompts=2, overlap=1, adaptive_threshold=0.5, max_overlap=3)
        set_prompts(db, prompt_ids[:1], boosted=True, target_overlap=2, active_count=2)
        assert next_task(client, project, h).json()["prompt_id"] == prompt_ids[1]
        assert next_task(client, project, h2).status_code == 204
        db.rollback()
        assert [db.get(Prompt, p).active_count for p in prompt_ids] == [2, 1]

    @pytest.mark.parametrize("queue", ["least_served", "gold", "boosted"])
    def test_ties_go_to_the_lowest_id_whatever_order_the_rows_are_stored_in(self, db, setup, monkeypatch, queue):
        """Rows written in reverse id order (on PostgreSQL an UPDATE stores a new row version after the others, so a
        table scan meets them in that order): each queue still serves its lowest id first. (SQLite walks an index in
        id order either way.)"""
        adaptive = {"adaptive_threshold": 0.5, "max_overlap": 4} if queue == "boosted" else {}
        project, _, prompt_ids = setup(n_annotators=1, n_prompts=3, overlap=3, **adaptive)
        for prompt_id in reversed(prompt_ids):
            set_prompts(db, [prompt_id], is_gold=queue == "gold", boosted=queue == "boosted", target_overlap=3)
        monkeypatch.setattr(service, "_random", lambda: 0.0)  # with gold_rate 1.0: gold first
        annotator = member(db, project)
        if db.get_bind().dialect.name == "postgresql":  # scan the table, not an index in id order: the query must sort
            db.execute(text("SET LOCAL enable_indexscan = off"))
            db.execute(text("SET LOCAL enable_bitmapscan = off"))
        lease = service.next_task(session=db, project=project, annotator=annotator, lease_minutes=30, gold_rate=1.0)
        assert lease.prompt_id == prompt_ids[0]

    def test_a_project_without_adaptive_overlap_ignores_the_boost(self, client, db, setup):
        project, (h,), prompt_ids = setup(n_annotators=1, n_prompts=2, overlap=2)
        set_prompts(db, prompt_ids[1:], boosted=True, active_count=1)  # left over, say, from adaptive overlap switched off
        assert next_task(client, project, h).json()["prompt_id"] == prompt_ids[0]

    def test_the_default_gold_rate_never_serves_gold_first(self, db, setup, monkeypatch):
        project, _, prompt_ids = setup(n_annotators=1, n_prompts=2)
        set_prompts(db, prompt_ids[1:], is_gold=True)
        monkeypatch.setattr(service, "_random", lambda: 0.0)
        lease = service.next_task(session=db, project=project, annotator=member(db, project), lease_minutes=30)
        assert lease.prompt_id == prompt_ids[0]

    def test_a_gold_prompt_past_its_target_is_served_last_and_once(self, client, db, setup, monkeypatch):
        project, (h,), (plain, gold) = setup(n_annotators=1, n_prompts=2, overlap=1)
        monkeypatch.setattr(service, "_random", lambda: 0.5)  # above GOLD_RATE: gold is not tried first
        set_prompts(db, [gold], is_gold=True, target_overlap=1, active_count=1)  # "full", but gold is for everyone
        served = []
        while (response := next_task(client, project, h)).status_code == 200:
            served.append(response.json()["prompt_id"])
            assert submit(client, response.json()["task_id"], rank_as_shown(response.json()), h).status_code == 201
        assert served == [plain, gold]
        db.rollback()
        assert db.get(Prompt, gold).active_count == 2


class TestStoredLabel:
    def test_every_column_and_field_of_a_ranking_label(self, client, db, setup):
        project, (h,), (prompt_id,) = setup(n_annotators=1, n_prompts=1, k=3, rating_criteria=CRITERIA)
        task = next_task(client, project, h).json()
        ids = [r["id"] for r in task["responses"]]
        body = {
            "ranking": [[ids[1]], [ids[0]], [ids[2]]],
            "rationale": "  B reads best \n",
            "time_spent_ms": 4321,
            "ratings": {"helpfulness": {str(ids[1]): 6.5}},
        }
        before = utcnow()
        response = submit(client, task["task_id"], body, h)
        assert response.status_code == 201, response.text
        db.rollback()
        stored = db.scalar(select(Annotation))
        annotator_id = member(db, project).id
        assert {c: getattr(stored, c) for c in ("assignment_id", "project_id", "prompt_id", "annotator_id", "kind")} == {
            "assignment_id": task["task_id"],
            "project_id": project.id,
            "prompt_id": prompt_id,
            "annotator_id": annotator_id,
            "kind": "ranking",
        }
        assert (stored.ranking, stored.strength, stored.none_acceptable, stored.flag, stored.flag_reason) == (
            body["ranking"], None, False, None, None,
        )  # fmt: skip
        assert (stored.rationale, stored.ratings, stored.time_spent_ms) == (
            "B reads best",
            {"helpfulness": {str(ids[1]): 6.5}},
            4321,
        )
        assert stored.shown_order == ids and before <= when(stored.created_at) <= utcnow()
        assert response.json() == {
            "id": stored.id,
            "task_id": task["task_id"],
            "prompt_id": prompt_id,
            "ranking": body["ranking"],
            "strength": None,
            "none_acceptable": False,
            "flag": None,
            "order_changed": True,  # B moved above A, the order shown
            "created_at": response.json()["created_at"],
            "revision": 0,
            "revised_at": None,
            "duplicate": False,
        }
        assert when(response.json()["created_at"]) == when(stored.created_at)
        # Counted once, and the task is done in the database (a later request finds it done, not leased).
        assert db.get(Assignment, task["task_id"]).status == "done"
        prompt = db.get(Prompt, prompt_id)
        assert (prompt.completed_count, prompt.active_count) == (1, 1)
        again = submit(client, task["task_id"], {"ranking": body["ranking"][::-1]}, h)
        assert again.status_code == 200 and again.json() == response.json() | {"duplicate": True}

    def test_a_pairwise_label_with_its_strength(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1, k=2, kind="pairwise", strength_scale=SCALE)
        task = next_task(client, project, h).json()
        x, y = (r["id"] for r in task["responses"])
        response = submit(client, task["task_id"], {"chosen": y, "rejected": x, "strength": 2}, h)
        assert (response.status_code, response.json()["ranking"], response.json()["strength"]) == (201, [[y], [x]], 2)
        db.rollback()
        stored = db.scalar(select(Annotation))
        assert (stored.kind, stored.ranking, stored.strength) == ("pairwise", [[y], [x]], 2)

    def test_a_strength_without_a_choice_is_not_stored(self, client, db, setup):
        """`strength` belongs to a choice of two: with "both are bad" and no choice there is nothing it grades."""
        project, (h,), _ = setup(n_annotators=1, n_prompts=1, k=2, kind="pairwise", strength_scale=SCALE)
        task = next_task(client, project, h).json()
        response = submit(client, task["task_id"], {"none_acceptable": True, "strength": 1}, h)
        assert response.status_code == 201 and response.json()["strength"] is None
        assert response.json()["none_acceptable"] is True and response.json()["ranking"] is None
        db.rollback()
        stored = db.scalar(select(Annotation))
        assert (stored.strength, stored.none_acceptable, stored.ranking) == (None, True, None)

    def test_a_flag_is_stored_with_its_reason(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        response = submit(client, task["task_id"], {"flag": "harmful", "flag_reason": "dangerous advice"}, h)
        assert response.status_code == 201 and response.json()["flag"] == "harmful"
        db.rollback()
        stored = db.scalar(select(Annotation))
        assert (stored.flag, stored.flag_reason, stored.none_acceptable, stored.ranking) == (
            "harmful",
            "dangerous advice",
            False,
            None,
        )

    @pytest.mark.parametrize("rationale", [None, "", "   \n"])
    def test_a_blank_rationale_is_none(self, client, db, setup, rationale):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        assert submit(client, task["task_id"], rank_as_shown(task) | {"rationale": rationale}, h).status_code == 201
        db.rollback()
        assert db.scalar(select(Annotation.rationale)) is None

    def test_without_time_spent_the_time_since_the_lease_is_stored(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        db.execute(update(Assignment).values(leased_at=utcnow() - timedelta(seconds=10_000)))
        db.commit()
        assert submit(client, task["task_id"], rank_as_shown(task), h).status_code == 201
        db.rollback()
        spent = db.scalar(select(Annotation.time_spent_ms))
        assert 10_000_000 <= spent < 10_000_000 + 5_000  # milliseconds, the test's own few moments included

    def test_a_time_spent_of_zero_is_kept(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        db.execute(update(Assignment).values(leased_at=utcnow() - timedelta(seconds=100)))
        db.commit()
        assert submit(client, task["task_id"], rank_as_shown(task) | {"time_spent_ms": 0}, h).status_code == 201
        db.rollback()
        assert db.scalar(select(Annotation.time_spent_ms)) == 0


class TestRefusals:
    @pytest.mark.parametrize(
        "body, message",
        [
            ({}, "Send a ranking (or chosen/rejected), or mark none_acceptable, or flag the task"),
            ({"rationale": "no idea"}, "Send a ranking (or chosen/rejected), or mark none_acceptable, or flag the task"),
            ({"flag": "harmful"}, "A flag needs a `flag_reason`"),
            ({"flag": "harmful", "flag_reason": "  "}, "A flag needs a `flag_reason`"),
        ],
    )
    def test_an_empty_label_is_refused(self, client, db, setup, body, message):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        response = submit(client, task["task_id"], body, h)
        assert (response.status_code, response.json()["detail"]) == (422, message)
        db.rollback()
        assert db.scalar(select(Annotation)) is None and db.get(Assignment, task["task_id"]).status == "leased"

    def test_a_skipped_task_cannot_be_labelled(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2)
        task = next_task(client, project, h).json()
        assert skip(client, task["task_id"], h).status_code == 204
        response = submit(client, task["task_id"], rank_as_shown(task), h)
        assert (response.status_code, response.json()["detail"]) == (409, "This task was skipped; it can no longer be labelled")

    def test_a_labelled_task_cannot_be_skipped(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2)
        task = next_task(client, project, h).json()
        assert submit(client, task["task_id"], rank_as_shown(task), h).status_code == 201
        response = skip(client, task["task_id"], h)
        assert (response.status_code, response.json()["detail"]) == (409, "This task was already labelled")

    def test_a_late_label_on_a_prompt_given_to_others_is_refused_and_rolled_back(self, client, db, setup):
        project, (a, b), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=1)
        late = next_task(client, project, a).json()
        expire_all(db)
        assert next_task(client, project, b).status_code == 200  # reclaims a's lease, gives the prompt to b
        response = submit(client, late["task_id"], rank_as_shown(late), a)
        assert (response.status_code, response.json()["detail"]) == (
            409,
            "Your lease on this task expired and it has since been given to others",
        )
        db.rollback()
        assert db.scalar(select(Annotation)) is None and db.get(Assignment, late["task_id"]).status == "expired"
        assert db.get(Prompt, prompt_id).completed_count == 0

    def test_an_unknown_task_is_not_found(self, db, setup):
        project, _, _ = setup(n_annotators=1, n_prompts=1)
        with pytest.raises(Exception, match=r"^Task not found$") as error:
            service.get_own_task(session=db, task_id=123_456, annotator=member(db, project))
        assert error.type.__name__ == "NotFound"

    def test_a_claim_on_a_prompt_already_held_is_a_conflict(self, db, setup, monkeypatch):
        """Cannot happen (the claim skips prompts the annotator holds or finished); should it, nothing is overwritten."""
        project, _, _ = setup(n_annotators=1, n_prompts=2)
        annotator = member(db, project)
        held = service.next_task(session=db, project=project, annotator=annotator, lease_minutes=30)
        db.commit()
        monkeypatch.setattr(service, "_claim_prompt", lambda **_: db.get(Prompt, held.prompt_id))
        with pytest.raises(Conflict, match=r"^This task is already yours; reload the page$"):
            service.prefetch_task(session=db, project=project, annotator=annotator, after_task_id=held.id, lease_minutes=30)
        db.rollback()
        assert db.scalar(select(Assignment.status)) == "leased"


class TestSubmitInOneSession:
    def test_a_racing_second_submit_reports_the_stored_label(self, client, db, setup):
        """Two submits of one task: the second read the assignment before the first stored it. ON CONFLICT makes it
        report the stored label instead of failing, and nothing is counted twice."""
        project, (h,), (prompt_id,) = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        db.rollback()
        stale = db.get(Assignment, task["task_id"])
        first = submit(client, task["task_id"], rank_as_shown(task), h).json()
        db.rollback()
        set_committed_value(stale, "status", AssignmentStatus.leased)  # what the racing request had read
        label = service.submit(
            session=db,
            project=db.get(Project, project.id),
            assignment=stale,
            annotator=member(db, project),
            data=AnnotationCreate(ranking=[[i] for i in reversed(stale.shown_order)]),
        )
        db.commit()
        assert label.duplicate is True and (label.id, label.ranking) == (first["id"], first["ranking"])
        db.rollback()
        assert db.get(Prompt, prompt_id, populate_existing=True).completed_count == 1

    def test_claim_and_label_in_one_session_review_the_counted_prompt(self, client, db, setup):
        """The adaptive review reads the prompt as counted by this label, not as the claim left it in the session:
        the second of two opposite rankings completes the prompt (overlap 2), and the disagreement boosts it."""
        project, (first, _), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=2, adaptive_threshold=0.9, max_overlap=3)
        task = next_task(client, project, first).json()
        ids = sorted(r["id"] for r in task["responses"])
        assert submit(client, task["task_id"], {"ranking": [[i] for i in ids]}, first).status_code == 201
        db.rollback()
        labelled_by = db.get(Assignment, task["task_id"]).annotator_id
        second = db.scalars(
            select(User).join(ProjectMember).where(ProjectMember.project_id == project.id, User.id != labelled_by)
        ).one()
        lease = service.next_task(session=db, project=project, annotator=second, lease_minutes=30)
        label = AnnotationCreate(ranking=[[i] for i in reversed(ids)])
        assert service.submit(session=db, project=project, assignment=lease, annotator=second, data=label).duplicate is False
        assert lease.status == "done"
        db.commit()
        prompt = db.get(Prompt, prompt_id, populate_existing=True)
        assert (prompt.completed_count, prompt.active_count, prompt.target_overlap, prompt.boosted) == (2, 2, 3, True)


class TestSkip:
    def test_the_reason_is_stripped_and_a_second_skip_changes_nothing(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=2)
        task = next_task(client, project, h).json()
        assert skip(client, task["task_id"], h, "  not my language \n").status_code == 204
        assert skip(client, task["task_id"], h, "another reason").status_code == 204
        db.rollback()
        skipped = db.get(Assignment, task["task_id"])
        assert (skipped.status, skipped.skip_reason) == ("skipped", "not my language")
        assert db.get(Prompt, task["prompt_id"]).active_count == 0

    @pytest.mark.parametrize("reason", [None, "   "])
    def test_no_reason_is_none(self, client, db, setup, reason):
        project, (h,), _ = setup(n_annotators=1, n_prompts=1)
        task = next_task(client, project, h).json()
        assert skip(client, task["task_id"], h, reason).status_code == 204
        db.rollback()
        assert db.get(Assignment, task["task_id"]).skip_reason is None

    def test_skipping_a_reclaimed_lease_gives_no_slot_back_twice(self, client, db, setup):
        project, (a, b), (prompt_id,) = setup(n_annotators=2, n_prompts=1, overlap=2)
        task = next_task(client, project, a).json()
        next_task(client, project, b)
        db.execute(
            update(Assignment).where(Assignment.id == task["task_id"]).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
        db.rollback()
        assert service.reclaim_expired_leases(session=db, project_id=project.id) == 1
        db.commit()
        assert skip(client, task["task_id"], a).status_code == 204
        db.rollback()
        assert db.get(Prompt, prompt_id, populate_existing=True).active_count == 1  # b's lease only
        assert db.get(Assignment, task["task_id"]).status == "skipped"


def test_the_done_count_is_the_annotators_labels_in_the_project(client, db, make_user, make_project, bearer, add_prompts):
    me, other = make_user(Role.annotator), make_user(Role.annotator)
    projects = [make_project(members=[me, other], overlap=2) for _ in range(2)]
    for project in projects:
        add_prompts(project, 3, 2)

    def label(project, user, n):
        for _ in range(n):
            task = next_task(client, project, bearer(user)).json()
            assert submit(client, task["task_id"], rank_as_shown(task), bearer(user)).status_code == 201

    label(projects[0], me, 2)
    label(projects[0], other, 3)
    label(projects[1], me, 1)
    db.rollback()
    counts = [service.annotator_progress(session=db, project=p, annotator=u).done for p in projects for u in (me, other)]
    assert counts == [2, 3, 1, 0]


@pytest.mark.parametrize("gold_roll", [0.0, 1.0], ids=["gold-queue-tried-first", "least-served-first"])
def test_a_next_task_reads_its_prompt_and_responses_with_the_claim(client, app, db, setup, monkeypatch, gold_roll):
    """The hot path: the claim (UPDATE ... RETURNING the prompt and its responses) is the only read of either; after
    the lease, the task is shown from what the claim returned, with every response of the prompt. A gold roll tries
    the (here empty) gold queue first: two claims, each carrying its own prompt's responses."""
    monkeypatch.setattr(service, "_random", lambda: gold_roll)
    project, (h,), _ = setup(n_annotators=1, n_prompts=2)
    db.execute(update(Prompt).where(Prompt.project_id == project.id, Prompt.external_id == "p0").values(active_count=3))
    db.commit()  # the second prompt is served first: its responses' ids are not its own id's neighbours
    statements: list[tuple[int, str]] = []  # (thread, SQL): the route's own, not another thread's on the shared engine
    engine = app.state.database.engine

    def record(conn, cursor, sql, params, context, many):
        statements.append((threading.get_ident(), " ".join(sql.split()).upper()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        task = next_task(client, project, h)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert task.status_code == 200
    texts = db.execute(select(Response.id, Response.text).where(Response.prompt_id == task.json()["prompt_id"])).all()
    assert sorted((r["id"], r["text"]) for r in task.json()["responses"]) == sorted(tuple(t) for t in texts)
    assert len(texts) >= 2 and task.json()["prompt_id"] != db.scalar(select(func.min(Prompt.id)))
    (route,) = {thread for thread, sql in statements if sql.startswith("UPDATE PROMPTS SET ACTIVE_COUNT")}
    mine = [sql for thread, sql in statements if thread == route]
    assert not [s for s in mine if s.startswith("SELECT") and "FROM RESPONSES" in s], mine
    assert not [s for s in mine if s.startswith("SELECT") and "FROM PROMPTS" in s.split(" WHERE ")[0]], mine
    claims = [s for s in mine if s.startswith("UPDATE PROMPTS")]
    assert len(claims) == (2 if gold_roll == 0.0 else 1), mine
    for claim in claims:  # the claimed prompt's responses, not another's
        assert "FROM RESPONSES WHERE RESPONSES.PROMPT_ID = PROMPTS.ID" in claim, claim


def test_prefetch_without_a_gold_rate_never_serves_gold_first(db, setup, monkeypatch):
    project, _, prompt_ids = setup(n_annotators=1, n_prompts=2)
    set_prompts(db, prompt_ids[1:], is_gold=True)
    monkeypatch.setattr(service, "_random", lambda: 0.0)
    lease = service.prefetch_task(
        session=db, project=project, annotator=member(db, project), after_task_id=None, lease_minutes=30
    )
    assert lease.prompt_id == prompt_ids[0]


class TestPostgresLocks:
    """The row locks that keep concurrent requests apart on PostgreSQL (SQLite serialises write transactions
    instead): each checked from a second session that must, or must not, wait for the first."""

    @pytest.fixture(autouse=True)
    def _postgres_only(self, database):
        if database.engine.dialect.name != "postgresql":
            pytest.skip("row locks: PostgreSQL only")

    @staticmethod
    def locked(session, statement) -> bool:
        """Whether another transaction holds a lock on the rows of `statement` (FOR UPDATE NOWAIT fails at once)."""
        try:
            with session.begin_nested():
                session.execute(statement.with_for_update(nowait=True))
        except OperationalError:
            return True
        return False

    def test_submit_and_skip_lock_their_task_and_viewing_does_not(self, database, db, setup):
        project, _, _ = setup(n_annotators=1, n_prompts=1)
        annotator = member(db, project)
        lease = service.next_task(session=db, project=project, annotator=annotator, lease_minutes=30)
        db.commit()
        row = select(Assignment.id).where(Assignment.id == lease.id)
        with database.sessionmaker() as first, database.sessionmaker() as second:
            service.get_own_task(session=first, task_id=lease.id, annotator=annotator, lock=True)
            assert self.locked(second, row)
            first.rollback()
            service.get_own_task(session=first, task_id=lease.id, annotator=annotator)  # the default: a read
            assert not self.locked(second, row)
            first.rollback()

    def test_a_claim_locks_the_annotator_and_asking_again_does_not(self, database, db, setup):
        project, _, _ = setup(n_annotators=1, n_prompts=2)
        annotator = member(db, project)
        user_row = select(User.id).where(User.id == annotator.id)
        with database.sessionmaker() as first, database.sessionmaker() as second:
            lease = service.next_task(session=first, project=project, annotator=annotator, lease_minutes=30)
            assert self.locked(second, user_row)  # one claim at a time per annotator
            first.commit()
            assert service.next_task(session=first, project=project, annotator=annotator, lease_minutes=30).id == lease.id
            assert not self.locked(second, user_row)  # holding a lease: no lock (a lock is a write)
            first.rollback()

    def test_a_claim_waiting_for_the_annotators_lock_returns_the_lease_claimed_meanwhile(self, database, db, setup):
        """A double click: the second "next" waits for the first, then finds the lease it took (not a second one)."""
        project, _, _ = setup(n_annotators=1, n_prompts=3)
        annotator = member(db, project)
        with database.sessionmaker() as first, database.sessionmaker() as second:
            lease = service.next_task(session=first, project=project, annotator=annotator, lease_minutes=30)
            with ThreadPoolExecutor(1) as thread:
                waiting = thread.submit(
                    lambda: (
                        service.next_task(
                            session=second,
                            project=second.get(Project, project.id),
                            annotator=second.get(User, annotator.id),
                            lease_minutes=30,
                        ).id
                    )
                )
                deadline = time.monotonic() + 10
                while not waiting.done() and not _waits_for_a_lock(first) and time.monotonic() < deadline:
                    time.sleep(0.05)
                first.commit()
                assert waiting.result(timeout=10) == lease.id
            second.commit()
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Assignment)) == 1

    def test_a_claim_skips_a_prompt_another_claim_holds(self, database, db, setup):
        project, _, prompt_ids = setup(n_annotators=2, n_prompts=2, overlap=2)
        one, two = db.scalars(
            select(User).join(ProjectMember, ProjectMember.user_id == User.id).where(ProjectMember.project_id == project.id)
        ).all()
        with database.sessionmaker() as first, database.sessionmaker() as second:
            assert service.next_task(session=first, project=project, annotator=one, lease_minutes=30).prompt_id == prompt_ids[0]
            second.execute(text("SET LOCAL lock_timeout = '5s'"))  # waiting instead of skipping fails here
            assert service.next_task(session=second, project=project, annotator=two, lease_minutes=30).prompt_id == prompt_ids[1]
            first.rollback()
            second.rollback()


def _waits_for_a_lock(session) -> bool:
    """Whether a session of this database waits for a lock now."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    return bool(session.scalar(text(waiting)))
