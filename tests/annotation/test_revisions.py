"""Issue #13, "review and revise your own labels": PUT /api/tasks/{id}/annotations replaces the caller's own label
(checked as a submit is), keeps the version it replaced in annotation_revisions, and everything that reads labels
(agreement, adaptive overlap, exports) sees the latest; GET /api/me/annotations and the "My labels" pages list the
caller's own labels only."""

import html
import json
import re
import threading

import pytest
from sqlalchemy import func, select

from app.models import Annotation, AnnotationRevision, Assignment, Project, Prompt, Role
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task

add_prompts = test_queue.add_prompts  # the queue tests' fixture
SECRET = "SOMEONE-ELSES-RATIONALE-93c1"


def label_fields(**given) -> dict:
    """A label's fields as the API and the revise page give them back: the given ones, the rest as an untouched
    submit leaves them (written out here, not taken from the app, so a changed default fails the tests)."""
    untouched = {"chosen": None, "rejected": None, "tie": False, "strength": None, "none_acceptable": False}
    return {"ranking": None} | untouched | {"flag": None, "flag_reason": None, "rationale": None, "ratings": None} | given


def url(task_id: int) -> str:
    return f"/api/tasks/{task_id}/annotations"


def as_shown(task) -> list[list[int]]:
    return [[r["id"]] for r in task["responses"]]


def label_next(client, project, headers, order=lambda shown: shown, **extra) -> dict:
    """Lease the next task and submit `order` of its shown responses; the task (with the stored label's id)."""
    task = next_task(client, project, headers).json()
    shown = [r["id"] for r in task["responses"]]
    body = {"ranking": [[rid] for rid in order(shown)], **extra}
    response = client.post(url(task["task_id"]), json=body, headers=headers)
    assert response.status_code == 201, response.text
    return task | {"annotation_id": response.json()["id"]}


@pytest.fixture
def world(client, make_user, make_project, bearer, add_prompts):
    """A ranking project (ties allowed, overlap 2) with 3 prompts; `me` labelled two of them, `other` one (with a
    secret rationale)."""

    def make(**project_fields):
        me, other = make_user(Role.annotator), make_user(Role.annotator)
        project = make_project(members=[me, other], overlap=2, allow_ties=True, **project_fields)
        add_prompts(project, 3, 3)
        h_me, h_other = bearer(me), bearer(other)
        mine = [label_next(client, project, h_me, rationale="first thought"), label_next(client, project, h_me)]
        theirs = label_next(client, project, h_other, rationale=SECRET)
        return project, (me, h_me, mine), (other, h_other, theirs)

    return make


class TestRevise:
    def test_stores_the_new_version_and_keeps_the_old_one(self, client, db, world):
        _, (me, h, (task, _)), _ = world()
        shown = [r["id"] for r in task["responses"]]
        first = db.get(Annotation, task["annotation_id"])
        first_created, first_ms = first.created_at, first.time_spent_ms
        db.rollback()
        body = {"ranking": [[shown[2]], [shown[0], shown[1]]], "rationale": "second thought", "time_spent_ms": 500}
        response = client.put(url(task["task_id"]), json=body, headers=h)
        assert response.status_code == 200, response.text
        got = response.json()
        assert got["id"] == task["annotation_id"] and got["task_id"] == task["task_id"]
        assert (got["ranking"], got["order_changed"], got["revision"]) == (body["ranking"], True, 1)
        assert got["revised_at"] is not None

        db.rollback()
        rows = db.scalars(select(Annotation).where(Annotation.assignment_id == task["task_id"])).all()
        assert len(rows) == 1  # still one label for the task
        latest = rows[0]
        assert (latest.ranking, latest.rationale, latest.order_changed, latest.revision) == (
            body["ranking"],
            "second thought",
            True,
            1,
        )
        assert latest.created_at == first_created and latest.revised_at is not None
        assert latest.time_spent_ms == first_ms + 500  # total time on the label
        (old,) = db.scalars(select(AnnotationRevision)).all()
        assert (old.annotation_id, old.revision, old.revised_by_id) == (latest.id, 0, me.id)
        assert (old.ranking, old.rationale, old.order_changed) == ([[rid] for rid in shown], "first thought", False)
        assert (old.submitted_at, old.revised_at, old.time_spent_ms) == (first_created, latest.revised_at, first_ms)

        again = client.put(url(task["task_id"]), json={"ranking": [[rid] for rid in shown]}, headers=h)
        assert again.status_code == 200 and (again.json()["revision"], again.json()["order_changed"]) == (2, False)
        db.rollback()
        history = db.scalars(select(AnnotationRevision).order_by(AnnotationRevision.revision)).all()
        assert [(r.revision, r.ranking, r.rationale) for r in history] == [
            (0, [[rid] for rid in shown], "first thought"),
            (1, body["ranking"], "second thought"),
        ]
        assert history[1].submitted_at == history[0].revised_at  # version 1 was submitted when version 0 was replaced
        assert history[1].revised_at == latest.revised_at
        assert db.scalar(select(func.count()).select_from(Annotation)) == 3

    def test_checked_as_a_submit_is(self, client, db, world):
        _, (_, h, (task, _)), _ = world()
        shown = [r["id"] for r in task["responses"]]
        for body, message in [
            ({"ranking": [[shown[0]], [shown[1]]]}, "must list each of the prompt's responses exactly once"),
            ({"chosen": shown[0], "rejected": shown[1]}, "This is a ranking project"),
            ({"flag": "harmful"}, "A flag needs a `flag_reason`"),
            ({}, "Send a ranking"),
        ]:
            response = client.put(url(task["task_id"]), json=body, headers=h)
            assert response.status_code == 422 and message in response.text, response.text
        db.rollback()
        assert db.scalar(select(func.count()).select_from(AnnotationRevision)) == 0
        assert db.get(Annotation, task["annotation_id"]).revision == 0

    def test_a_pairwise_label_revised(self, client, db, make_user, make_project, bearer, add_prompts):
        annotator = make_user(Role.annotator)
        scale = ["much better", "slightly better"]
        project = make_project(members=[annotator], kind="pairwise", strength_scale=scale, allow_ties=True)
        add_prompts(project, 1, 2)
        h = bearer(annotator)
        task = next_task(client, project, h).json()
        a, b = [r["id"] for r in task["responses"]]
        assert client.post(url(task["task_id"]), json={"chosen": a, "rejected": b, "strength": 0}, headers=h).status_code == 201
        assert client.put(url(task["task_id"]), json={"chosen": b, "rejected": a}, headers=h).status_code == 422  # no strength
        revised = client.put(url(task["task_id"]), json={"chosen": b, "rejected": a, "strength": 1}, headers=h).json()
        assert (revised["ranking"], revised["strength"], revised["order_changed"]) == ([[b], [a]], 1, True)
        tie = client.put(url(task["task_id"]), json={"tie": True}, headers=h).json()
        assert (tie["ranking"], tie["strength"], tie["revision"]) == ([sorted([a, b])], None, 2)
        mine = client.get("/api/me/annotations", params={"project_id": project.id}, headers=h).json()["items"]
        assert mine[0]["label"] | {"rationale": None} == label_fields(tie=True, time_spent_ms=None)
        db.rollback()
        assert [r.strength for r in db.scalars(select(AnnotationRevision).order_by(AnnotationRevision.revision))] == [0, 1]

    def test_not_found_for_others_and_for_unlabelled_tasks(self, client, db, world):
        project, (_, h, mine), (_, h_other, theirs) = world()
        body = {"ranking": as_shown(theirs)}
        assert client.put(url(theirs["task_id"]), json=body, headers=h).status_code == 404  # someone else's label
        assert client.put(url(mine[0]["task_id"]), json={"ranking": as_shown(mine[0])}, headers=h_other).status_code == 404
        leased = next_task(client, project, h).json()  # mine, not labelled yet
        response = client.put(url(leased["task_id"]), json={"ranking": as_shown(leased)}, headers=h)
        assert response.status_code == 404 and "no label" in response.json()["detail"]
        assert client.put(url(10**9), json=body, headers=h).status_code == 404
        db.rollback()
        assert db.scalar(select(func.count()).select_from(AnnotationRevision)) == 0
        assert db.get(Annotation, theirs["annotation_id"]).rationale == SECRET

    def test_closed_revisions_are_a_409(self, client, db, world):
        project, (_, h, (task, _)), _ = world(revisions_open=False)
        response = client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h)
        assert response.status_code == 409 and "no longer accepts revisions" in response.json()["detail"]
        db.rollback()
        assert db.get(Annotation, task["annotation_id"]).revision == 0
        assert client.get(f"/api/projects/{project.id}", headers=h).json()["revisions_open"] is False

    def test_the_queue_is_untouched(self, client, db, world, login_as):
        project, (me, h, (task, _)), _ = world()

        def queue_state():
            db.rollback()
            prompts = db.execute(select(Prompt.id, Prompt.active_count, Prompt.completed_count).order_by(Prompt.id)).all()
            return prompts, db.execute(select(Assignment.id, Assignment.status).order_by(Assignment.id)).all()

        before = queue_state()
        assert client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h).status_code == 200
        assert login_as(me).get(f"/projects/{project.id}/my-labels/{task['task_id']}").status_code == 200
        assert login_as(me).get(f"/projects/{project.id}/my-labels").status_code == 200
        assert queue_state() == before

    @pytest.mark.parametrize("how", ["api", "form"])
    def test_a_removed_member_cannot_revise_or_list(self, client, db, world, make_user, bearer, login_as, how):
        project, (me, h, (task, _)), _ = world()
        admin = make_user(Role.admin)
        if how == "api":
            assert client.delete(f"/api/projects/{project.id}/members/{me.id}", headers=bearer(admin)).status_code == 204
        else:
            assert (
                login_as(admin).post(f"/projects/{project.id}/members/{me.id}/remove", follow_redirects=False).status_code == 303
            )
        assert client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h).status_code == 404
        assert client.get("/api/me/annotations", params={"project_id": project.id}, headers=h).status_code == 404
        assert client.get(f"/projects/{project.id}/my-labels", headers=h).status_code == 404
        assert client.get(f"/projects/{project.id}/my-labels/{task['task_id']}", headers=h).status_code == 404
        db.rollback()
        assert db.get(Annotation, task["annotation_id"]).revision == 0

    def test_anonymous_outsider_and_staff(self, client, world, make_user, bearer):
        project, (_, _, (task, _)), _ = world()
        body = {"ranking": as_shown(task)}
        assert client.put(url(task["task_id"]), json=body).status_code == 401
        assert client.get("/api/me/annotations", params={"project_id": project.id}).status_code == 401
        outsider = bearer(make_user(Role.annotator))
        assert client.put(url(task["task_id"]), json=body, headers=outsider).status_code == 404
        assert client.get("/api/me/annotations", params={"project_id": project.id}, headers=outsider).status_code == 404
        for role in (Role.researcher, Role.admin):  # staff see the project, but labelling (and one's labels) is for members
            staff = bearer(make_user(role))
            assert client.put(url(task["task_id"]), json=body, headers=staff).status_code == 404
            assert client.get("/api/me/annotations", params={"project_id": project.id}, headers=staff).status_code == 403

    def test_concurrent_revisions_lose_no_history(self, app, client, db, world):
        from fastapi.testclient import TestClient

        _, (_, h, (task, _)), _ = world()
        shown = [r["id"] for r in task["responses"]]
        orders = [shown[::-1], [shown[1], shown[0], shown[2]], [shown[2], shown[0], shown[1]], [shown[0], shown[2], shown[1]]]
        statuses: list[int] = []

        def revise(order):
            with TestClient(app) as own:
                statuses.append(own.put(url(task["task_id"]), json={"ranking": [[rid] for rid in order]}, headers=h).status_code)

        threads = [threading.Thread(target=revise, args=(order,)) for order in orders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert statuses == [200] * 4
        db.rollback()
        latest = db.get(Annotation, task["annotation_id"])
        history = db.scalars(select(AnnotationRevision).order_by(AnnotationRevision.revision)).all()
        assert latest.revision == 4 and [r.revision for r in history] == [0, 1, 2, 3]
        versions = [r.ranking for r in history] + [latest.ranking]
        # Each revision replaced the one before it: every submitted order appears once after the original.
        assert versions[0] == [[rid] for rid in shown]
        assert sorted(map(str, versions[1:])) == sorted(str([[rid] for rid in order]) for order in orders)


class TestMyLabelsApi:
    def test_own_labels_only_newest_first(self, client, world):
        project, (_, h, mine), (_, h_other, theirs) = world()
        page = client.get("/api/me/annotations", params={"project_id": project.id}, headers=h)
        assert page.status_code == 200 and SECRET not in page.text
        body = page.json()
        assert (body["total"], body["limit"], body["offset"]) == (2, 50, 0)
        assert [i["task_id"] for i in body["items"]] == [mine[1]["task_id"], mine[0]["task_id"]]
        first = body["items"][1]
        assert first["label"] == label_fields(ranking=as_shown(mine[0]), rationale="first thought", time_spent_ms=None)
        assert (first["revision"], first["revised_at"], first["order_changed"]) == (0, None, False)
        assert first["prompt_id"] == mine[0]["prompt_id"] and first["prompt_excerpt"] == mine[0]["prompt"]
        others = client.get("/api/me/annotations", params={"project_id": project.id}, headers=h_other).json()
        assert [i["task_id"] for i in others["items"]] == [theirs["task_id"]]

    def test_pages(self, client, world):
        project, (_, h, mine), _ = world()
        params = {"project_id": project.id, "limit": 1}
        one = client.get("/api/me/annotations", params=params, headers=h).json()
        two = client.get("/api/me/annotations", params=params | {"offset": 1}, headers=h).json()
        three = client.get("/api/me/annotations", params=params | {"offset": 2}, headers=h).json()
        assert [i["task_id"] for i in one["items"] + two["items"]] == [mine[1]["task_id"], mine[0]["task_id"]]
        assert three["items"] == [] and three["total"] == 2
        bad = client.get("/api/me/annotations", params={"project_id": project.id, "limit": 0}, headers=h)
        assert bad.status_code == 422 and "limit" in bad.text
        assert client.get("/api/me/annotations", headers=h).status_code == 422  # project_id is required
        huge = client.get("/api/me/annotations", params={"project_id": 2**31}, headers=h)
        assert huge.status_code == 422 and "project_id" in huge.text  # beyond INTEGER: named, not a driver overflow

    def test_a_revision_shows(self, client, world):
        project, (_, h, (task, _)), _ = world()
        client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h)
        item = next(
            i
            for i in client.get("/api/me/annotations", params={"project_id": project.id}, headers=h).json()["items"]
            if i["task_id"] == task["task_id"]
        )
        assert (item["revision"], item["label"]["ranking"], item["label"]["rationale"], item["order_changed"]) == (
            1,
            as_shown(task)[::-1],
            None,  # the revision sent none
            True,
        )
        assert item["revised_at"] is not None


class TestEverythingReadsTheLatest:
    def test_raw_export(self, client, world, make_user, bearer):
        project, (_, h, (task, untouched)), _ = world()
        client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h)
        staff = bearer(make_user(Role.researcher))
        raw = client.get(f"/api/projects/{project.id}/export", params={"format": "raw", "file_type": "jsonl"}, headers=staff)
        rows = {r["annotation_id"]: r for r in map(json.loads, raw.text.splitlines())}
        assert len(rows) == 3
        revised, never = rows[task["annotation_id"]], rows[untouched["annotation_id"]]
        assert (revised["ranking"], revised["revision"], revised["order_changed"]) == (as_shown(task)[::-1], 1, True)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", revised["revised_at"]) and revised["revised_at"] > revised["created_at"]
        assert (never["revision"], never["revised_at"]) == (0, None)

    def test_parquet_schema(self, client, world, make_user, bearer):
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        project, (_, h, (task, _)), _ = world()
        client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h)
        response = client.get(
            f"/api/projects/{project.id}/export",
            params={"format": "raw", "file_type": "parquet"},
            headers=bearer(make_user(Role.admin)),
        )
        table = pq.read_table(io.BytesIO(response.content))
        schema = table.schema
        assert (schema.field("revision").type, schema.field("revised_at").type) == (pa.int64(), pa.string())
        assert schema.field("order_changed").type == pa.bool_()
        assert sorted(table.column("revision").to_pylist()) == [0, 0, 1]

    def test_agreement(self, client, make_user, make_project, bearer, add_prompts):
        """Two prompts, two annotators: they agree on one and disagree on the other (agreement 1/2); one revises
        the disputed label to agree (1). Counted here from the stored choices."""
        a, b = make_user(Role.annotator), make_user(Role.annotator)
        project = make_project(members=[a, b], kind="pairwise", overlap=2)
        add_prompts(project, 2, 2)
        ha, hb, staff = bearer(a), bearer(b), bearer(make_user(Role.researcher))
        choice: dict[tuple[int, int], int] = {}  # (annotator, prompt) -> chosen response
        tasks = {}
        for who, h in ((a.id, ha), (b.id, hb)):
            for n in range(2):
                task = next_task(client, project, h).json()
                low, high = sorted(r["id"] for r in task["responses"])
                chosen = high if (who, n) == (b.id, 1) else low  # b differs from a on its second task only
                body = {"chosen": chosen, "rejected": high if chosen == low else low}
                assert client.post(url(task["task_id"]), json=body, headers=h).status_code == 201
                choice[(who, task["prompt_id"])] = chosen
                tasks[(who, task["prompt_id"])] = task

        def independent():
            prompts = {p for _, p in choice}
            return sum(choice[(a.id, p)] == choice[(b.id, p)] for p in prompts) / len(prompts)

        def reported():
            report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
            return report["project"]["agreement_tie_half_pooled"]["value"]

        assert independent() == 0.5 and reported() == pytest.approx(0.5)
        (disputed,) = [p for (who, p) in choice if who == b.id and choice[(b.id, p)] != choice[(a.id, p)]]
        task = tasks[(b.id, disputed)]
        low, high = sorted(r["id"] for r in task["responses"])
        assert client.put(url(task["task_id"]), json={"chosen": low, "rejected": high}, headers=hb).status_code == 200
        choice[(b.id, disputed)] = low
        assert independent() == 1.0 and reported() == pytest.approx(1.0)

    def test_adaptive_overlap_is_reviewed_after_a_revision(self, client, db, make_user, make_project, bearer, add_prompts):
        annotators = [make_user(Role.annotator) for _ in range(3)]
        project = make_project(members=annotators, overlap=2, adaptive_threshold=0.9, max_overlap=3)
        add_prompts(project, 1, 3)
        h = [bearer(x) for x in annotators]
        by_id = sorted  # both rank by response id: full agreement, no boost
        first = label_next(client, project, h[0], order=by_id)
        second = label_next(client, project, h[1], order=by_id)
        db.rollback()
        prompt = db.get(Prompt, first["prompt_id"])
        assert (prompt.target_overlap, prompt.boosted) == (2, False)
        assert next_task(client, project, h[2]).status_code == 204  # complete: nothing for a third annotator
        reversed_ids = [[rid] for rid in sorted(r["id"] for r in second["responses"])[::-1]]
        assert client.put(url(second["task_id"]), json={"ranking": reversed_ids}, headers=h[1]).status_code == 200
        db.rollback()
        db.refresh(prompt)
        assert (prompt.target_overlap, prompt.boosted, prompt.completed_count) == (3, True, 2)
        assert next_task(client, project, h[2]).json()["prompt_id"] == prompt.id  # a third annotator is asked

    def test_gold_stays_as_marked(self, client, db, world, make_user, bearer, login_as):
        project, (me, h, (task, _)), _ = world()
        researcher = make_user(Role.researcher)
        browser = login_as(researcher)
        marked = browser.post(
            f"/projects/{project.id}/prompts/{task['prompt_id']}/gold",
            data={"annotation_id": task["annotation_id"], "csrf_token": browser.headers["X-CSRF-Token"]},
        )
        assert marked.status_code == 200
        db.rollback()
        assert db.get(Prompt, task["prompt_id"]).gold_ranking == as_shown(task)
        assert client.put(url(task["task_id"]), json={"ranking": as_shown(task)[::-1]}, headers=h).status_code == 200
        db.rollback()
        assert db.get(Prompt, task["prompt_id"]).gold_ranking == as_shown(task)  # the answer as marked
        report = client.get(f"/api/projects/{project.id}/agreement", headers=bearer(researcher)).json()
        mine = next(a for a in report["annotators"] if a["annotator_id"] == me.id)
        assert (mine["gold_accuracy"], mine["gold_labels"]) == (0.0, 1)  # the revision reverses every pair of the gold


class TestPages:
    def test_my_labels_lists_own_labels_escaped(self, client, db, world, login_as):
        project, (me, h, mine), (other, _, theirs) = world()
        prompt = db.get(Prompt, mine[1]["prompt_id"])
        prompt.messages = [{"role": "user", "content": "<script>alert(1)</script> & more"}]
        db.commit()
        client.put(url(mine[0]["task_id"]), json={"ranking": as_shown(mine[0])[::-1]}, headers=h)
        page = login_as(me).get(f"/projects/{project.id}/my-labels")
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page.text
        rows = re.findall(r'<tr data-task="(\d+)">(.*?)</tr>', page.text, re.S)
        assert [int(t) for t, _ in rows] == [mine[1]["task_id"], mine[0]["task_id"]]  # newest first, mine only
        assert f'href="/projects/{project.id}/my-labels/{mine[0]["task_id"]}"' in rows[1][1]
        revisions = [re.findall(r"<td>(\d+)", body)[0] for _, body in rows]
        assert revisions == ["0", "1"]
        assert str(theirs["task_id"]) not in [t for t, _ in rows] and SECRET not in page.text
        other_page = login_as(other).get(f"/projects/{project.id}/my-labels").text
        assert re.findall(r'<tr data-task="(\d+)">', other_page) == [str(theirs["task_id"])]

    def test_revise_page_is_the_workbench_in_revise_mode(self, client, db, world, login_as):
        project, (me, h, (task, _)), (_, _, theirs) = world()
        browser = login_as(me)
        page = browser.get(f"/projects/{project.id}/my-labels/{task['task_id']}")
        assert page.status_code == 200
        block = re.search(r'<div class="annotate[^"]*" id="annotate"(.*?)>', page.text, re.S).group(1)
        attrs = _data_attributes(block)
        assert attrs["data-mode"] == "revise" and attrs["data-submit-method"] == "PUT"
        assert attrs["data-submit-url"] == url(task["task_id"])
        assert "data-prefetch-url" not in attrs and "data-skip-url" not in attrs and "data-lease-seconds" not in attrs
        initial = json.loads(html.unescape(attrs["data-initial-label"]))
        assert initial == label_fields(ranking=as_shown(task), rationale="first thought")
        assert [int(i) for i in re.findall(r'<article class="response[^"]*" id="card-[A-Z]" data-id="(\d+)"', page.text)] == [
            r["id"] for r in task["responses"]
        ]  # the order shown when it was labelled
        # The submit's own body works on the PUT it names.
        assert browser.put(attrs["data-submit-url"], json=initial | {"ranking": as_shown(task)[::-1]}).status_code == 200

        normal = browser.get(f"/projects/{project.id}/annotate").text
        normal_block = re.search(r'<div class="annotate[^"]*" id="annotate"(.*?)>', normal, re.S).group(1)
        normal_attrs = _data_attributes(normal_block)
        assert normal_attrs["data-mode"] == "label" and normal_attrs["data-submit-method"] == "POST"
        assert "data-initial-label" not in normal_attrs
        assert f'href="/projects/{project.id}/my-labels"' in normal

        assert browser.get(f"/projects/{project.id}/my-labels/{theirs['task_id']}").status_code == 404
        leased = next_task(client, project, h).json()
        assert browser.get(f"/projects/{project.id}/my-labels/{leased['task_id']}").status_code == 404

    def test_revise_page_escapes_the_stored_label(self, client, db, world, login_as):
        project, (me, h, (task, _)), _ = world()
        sneaky = "'\"><script>alert(1)</script>"
        assert (
            client.put(url(task["task_id"]), json={"ranking": as_shown(task), "rationale": sneaky}, headers=h).status_code == 200
        )
        page = login_as(me).get(f"/projects/{project.id}/my-labels/{task['task_id']}").text
        assert "<script>alert(1)" not in page
        block = re.search(r'<div class="annotate[^"]*" id="annotate"(.*?)>', page, re.S).group(1)
        initial = json.loads(html.unescape(_data_attributes(block)["data-initial-label"]))
        assert initial["rationale"] == sneaky

    def test_task_of_another_project_is_a_404(self, client, db, world, make_project, login_as):
        _, (me, _, (task, _)), _ = world()
        elsewhere = make_project(members=[me])
        assert login_as(me).get(f"/projects/{elsewhere.id}/my-labels/{task['task_id']}").status_code == 404

    def test_links_for_members(self, client, db, world, make_user, login_as):
        project, (me, _, _), _ = world()
        link = f'href="/projects/{project.id}/my-labels"'
        assert link in login_as(me).get(f"/projects/{project.id}").text
        assert link not in login_as(make_user(Role.researcher)).get(f"/projects/{project.id}").text


class TestSetting:
    def test_default_open_and_in_the_api(self, client, make_user, bearer):
        admin = bearer(make_user(Role.admin))
        opened = client.post("/api/projects", json={"name": "a"}, headers=admin).json()
        closed = client.post("/api/projects", json={"name": "b", "revisions_open": False}, headers=admin).json()
        assert (opened["revisions_open"], closed["revisions_open"]) == (True, False)

    def test_form(self, client, db, make_user, login_as):
        browser = login_as(make_user(Role.admin))
        form = browser.get("/projects/new").text
        assert re.search(r'name="revisions_open" value="true" checked', form)
        token = browser.headers["X-CSRF-Token"]
        for name, extra in (("open", {"revisions_open": "true"}), ("closed", {})):
            data = {"name": name, "kind": "ranking", "overlap": "2", "csrf_token": token} | extra
            assert browser.post("/projects/new", data=data, follow_redirects=False).status_code == 303
        db.rollback()
        assert dict(db.execute(select(Project.name, Project.revisions_open)).all()) == {"open": True, "closed": False}

    def test_cli(self, db):
        from tests.cli.test_cli import preflab

        preflab("project", "create", "cli closed", "--no-revisions-open")
        preflab("project", "create", "cli open")
        db.rollback()
        assert dict(db.execute(select(Project.name, Project.revisions_open)).all()) == {"cli closed": False, "cli open": True}


def _data_attributes(block: str) -> dict[str, str]:
    """The data-* attributes of a start tag's text, quoted either way (still HTML-escaped)."""
    return {m[1]: m[2] if m[2] is not None else m[3] for m in _DATA.finditer(block)}


_DATA = re.compile(r"""(data-[a-z-]+)=(?:"([^"]*)"|'([^']*)')""")
