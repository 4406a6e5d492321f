"""The annotation page's progress line (app.annotation.service.annotator_progress): "N left for you", the
annotator's labels, and the project's complete prompts, gold apart; checked against counts made by hand from
the rows, and on the page."""

from sqlalchemy import select

from app.annotation import service
from app.annotation.overlap import mark_gold
from app.models import Assignment, AssignmentStatus, Prompt, Role
from app.models.base import utcnow
from tests.agreement.test_agreement_app import upload
from tests.annotation.test_overlap import label


def by_hand(db, project, annotator) -> tuple[int, int, int, int]:
    """(left, done, complete, total) from the rows, one prompt at a time, as the queue's rules say."""
    prompts = db.scalars(select(Prompt).where(Prompt.project_id == project.id)).all()
    mine = {a.prompt_id: a for a in db.scalars(select(Assignment).where(Assignment.annotator_id == annotator.id))}
    left = 0
    for p in prompts:
        a = mine.get(p.id)
        holds = (
            a is not None
            and a.status == AssignmentStatus.leased
            and a.lease_expires_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
        )
        seen = a is not None and a.status != AssignmentStatus.expired
        wants = p.is_gold or p.active_count < p.target_overlap
        left += holds or (wants and not seen)
    done = sum(a.status == AssignmentStatus.done for a in mine.values())
    ordinary = [p for p in prompts if not p.is_gold]
    return left, done, sum(p.completed_count >= p.target_overlap for p in ordinary), len(ordinary)


def test_progress_counts(client, db, make_user, make_project, bearer):
    me, other, admin = make_user(Role.annotator), make_user(Role.annotator), make_user(Role.admin)
    project = make_project(members=[me, other], overlap=1)
    upload(client, project, bearer(admin), n=6)
    mine, theirs = bearer(me), bearer(other)

    def progress():
        db.rollback()  # see what the app committed since
        got = service.annotator_progress(session=db, project=project, annotator=me)
        assert (got.left, got.done, got.complete, got.total) == by_hand(db, project, me)
        return got

    assert (progress().left, progress().percent) == (6, 0)
    label(client, project, mine)  # 1 done by me
    label(client, project, theirs)  # 1 done by them: not left for me
    assert client.get(f"/api/projects/{project.id}/next", headers=theirs).status_code == 200  # leased by them
    assert client.get(f"/api/projects/{project.id}/next", headers=mine).status_code == 200  # held by me: still left
    got = progress()
    assert (got.left, got.done, got.complete, got.total, got.percent) == (
        3,
        1,
        2,
        6,
        33,
    )  # left: the one I hold and two nobody has

    gold = db.scalars(select(Prompt).where(Prompt.project_id == project.id, Prompt.completed_count == 1)).first()
    mark_gold(gold, [[1]])  # gold: apart from the project's percentage, and for everyone
    db.commit()
    got = progress()
    assert (got.complete, got.total) == (1, 5)

    page = client.get(f"/projects/{project.id}/annotate", headers=mine)
    assert page.status_code == 200
    assert page.context["progress"].left == progress().left
    assert f'<strong id="left-count">{progress().left}</strong>' in page.text
