"""Queue rules the other queue tests did not reach (issue #12, item 8, known gaps): several expired leases
on one prompt give back every slot, and the gold rate decides how often a gold prompt is served first."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.annotation import service
from app.models import Assignment, ProjectMember, Prompt, User
from app.models.base import utcnow
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task

add_prompts, setup = test_queue.add_prompts, test_queue.setup  # the queue tests' fixtures


def expire(db, *task_ids: int) -> None:
    db.execute(update(Assignment).where(Assignment.id.in_(task_ids)).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()


def active_counts(db, prompt_ids) -> list[int]:
    db.rollback()
    return [db.get(Prompt, p, populate_existing=True).active_count for p in prompt_ids]


class TestReclaimSeveralLeasesOnOnePrompt:
    def test_every_expired_lease_gives_its_slot_back(self, client, db, setup):
        # Prompt X leased by annotators 0, 1, 2 and prompt Y by 3, 4 (overlap 3, least served first: X gets 0, Y 1,
        # then X 2, Y 3, X 4... so lease them one prompt at a time). Expire two on X and one on Y: X 3 -> 1, Y 2 -> 1.
        project, headers, (x, y) = setup(n_annotators=5, n_prompts=2, overlap=3)
        tasks = [next_task(client, project, h).json() for h in headers]
        by_prompt = {p: [t["task_id"] for t in tasks if t["prompt_id"] == p] for p in (x, y)}
        assert sorted(map(len, by_prompt.values())) == [2, 3]
        big, small = (x, y) if len(by_prompt[x]) == 3 else (y, x)
        expire(db, *by_prompt[big][:2], by_prompt[small][0])
        db.rollback()
        assert service.reclaim_expired_leases(session=db, project_id=project.id) == 3
        db.commit()
        assert active_counts(db, [big, small]) == [1, 1]
        statuses = dict(db.execute(select(Assignment.id, Assignment.status)).all())
        assert [statuses[t] for t in by_prompt[big]] == ["expired", "expired", "leased"]
        assert [statuses[t] for t in by_prompt[small]] == ["expired", "leased"]
        # Done once: a second reclaim finds nothing more to give back.
        assert service.reclaim_expired_leases(session=db, project_id=project.id) == 0
        db.commit()
        assert active_counts(db, [big, small]) == [1, 1]

    def test_three_expired_on_one_prompt_free_all_three_slots(self, client, db, setup):
        project, headers, (prompt_id,) = setup(n_annotators=4, n_prompts=1, overlap=3)
        tasks = [next_task(client, project, h).json() for h in headers[:3]]
        assert next_task(client, project, headers[3]).status_code == 204  # full
        expire(db, *(t["task_id"] for t in tasks))
        # The next claim reclaims first: 3 -> 0, then the fourth annotator takes a slot.
        assert next_task(client, project, headers[3]).json()["prompt_id"] == prompt_id
        assert active_counts(db, [prompt_id]) == [1]


def make_gold(db, prompt_id: int) -> None:
    db.execute(update(Prompt).where(Prompt.id == prompt_id).values(is_gold=True, target_overlap=1_000_000))
    db.commit()


class TestGoldRate:
    """A gold prompt is tried first when a uniform draw in [0, 1) falls below the gold rate; the draw is fixed here.
    The gold prompt is the last one, so the least-served queue (fewest labels, then lowest id) never picks it."""

    @pytest.mark.parametrize(
        "gold_rate, draw, gold_first",
        [
            (0.1, 0.05, True),
            (0.1, 0.0999, True),
            (0.1, 0.1, False),  # the draw must be strictly below the rate
            (0.1, 0.5, False),
            (0.0, 0.0, False),  # a rate of 0 never serves gold first, even with a draw of 0
            (1.0, 0.9999, True),
        ],
    )
    def test_the_draw_decides(self, db, setup, monkeypatch, gold_rate, draw, gold_first):
        project, _, prompt_ids = setup(n_annotators=1, n_prompts=3)
        make_gold(db, prompt_ids[-1])
        monkeypatch.setattr(service, "_random", lambda: draw)
        user = _member(db, project)
        task = service.next_task(session=db, project=project, annotator=user, lease_minutes=30, gold_rate=gold_rate)
        assert task.prompt_id == (prompt_ids[-1] if gold_first else prompt_ids[0])

    def test_no_gold_prompt_left_falls_back_to_the_least_served(self, db, setup, monkeypatch):
        project, _, prompt_ids = setup(n_annotators=1, n_prompts=2)
        monkeypatch.setattr(service, "_random", lambda: 0.0)
        task = service.next_task(session=db, project=project, annotator=_member(db, project), lease_minutes=30, gold_rate=1.0)
        assert task.prompt_id == prompt_ids[0]

    def test_the_rate_is_the_share_of_claims(self, db, setup, monkeypatch):
        # Draws 0.00, 0.01, ..., 0.99 against a rate of 0.25: exactly 25 claims try gold first.
        project, _, _prompt_ids = setup(n_annotators=1, n_prompts=2)
        draws = iter(i / 100 for i in range(100))
        monkeypatch.setattr(service, "_random", lambda: next(draws))
        tried = []
        claim_statement = service._claim_statement
        monkeypatch.setattr(service, "_claim_statement", lambda queue: tried.append(queue) or claim_statement(queue))
        user = _member(db, project)
        for _ in range(100):
            service._claim_prompt(session=db, project=project, annotator=user, gold_rate=0.25)
            db.rollback()
        assert tried.count("gold") == 25 and tried.count("least_served") == 100


def _member(db, project) -> User:
    return db.scalars(
        select(User).join(ProjectMember, ProjectMember.user_id == User.id).where(ProjectMember.project_id == project.id)
    ).first()
