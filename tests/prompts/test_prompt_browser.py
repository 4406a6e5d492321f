"""The prompt browser (`GET /api/projects/{id}/prompts` and its page): every filter against a computation from
the stored rows, combinations, keyset pagination in every sort, full-text search on both databases, the stored
per-prompt agreement against the agreement report, bad parameters and who may look."""

import itertools
import json
import random
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update

from app.models import Annotation, Assignment, Prompt, ReferenceLabel, Role
from app.models.base import as_utc
from app.prompts.browse import encode_cursor

WORDS = ["apple", "banana", "cherry", "delta", "echo", "falcon"]
N_PROMPTS = 14


def rows(start: int, n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(start, start + n):
        words = rng.sample(WORDS, 2)
        prompt: str | list[dict] = f"Tell me about {words[0]} and {words[1]}, item {i}."
        if i % 5 == 0:  # a chat: the system turn's words are searched too
            prompt = [
                {"role": "system", "content": f"You like {words[0]}."},
                {"role": "user", "content": f"Item {i}: {words[1]}?"},
            ]
        out.append({"id": f"p{i}", "prompt": prompt, "responses": [f"answer {j} to {i}" for j in range(3)]})
    return out


def upload(client, project, headers, records) -> None:
    content = "\n".join(json.dumps(r) for r in records).encode()
    response = client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content)}, headers=headers)
    assert response.status_code == 200, response.text


@pytest.fixture
def campaign(client, db, make_user, make_project, bearer):
    """A ranking project labelled through the API: varied rankings (so agreements differ and tie), flags, skips,
    a held task, a gold prompt and reference labels."""
    rng = random.Random(3)
    annotators = [make_user(Role.annotator) for _ in range(4)]
    project = make_project(members=annotators, overlap=2)
    researcher = make_user(Role.researcher)
    staff = bearer(researcher)
    upload(client, project, staff, rows(0, N_PROMPTS, rng))
    for n, user in enumerate(annotators):
        headers = bearer(user)
        for step in range(7 if n < 3 else 2):
            task = client.get(f"/api/projects/{project.id}/next", headers=headers)
            if task.status_code == 204:
                break
            task = task.json()
            ids = sorted(r["id"] for r in task["responses"])
            if step == 3 and n == 0:
                reply = client.post(f"/api/tasks/{task['task_id']}/skip", json={"reason": "too <b>long</b>"}, headers=headers)
                assert reply.status_code == 204
                continue
            if n == 3 and step == 1:
                break  # the last annotator keeps this task on screen: in progress
            order = ids if rng.random() < 0.6 else rng.sample(ids, len(ids))
            body: dict = {"ranking": [[i] for i in order]}
            if step == 2:
                body |= {"flag": "harmful", "flag_reason": "rude"}
            reply = client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers)
            assert reply.status_code == 201, reply.text
    db.rollback()
    prompts = list(db.scalars(select(Prompt).where(Prompt.project_id == project.id).order_by(Prompt.id)))
    gold_id, gold_answer = prompts[-1].id, [[r] for r in _response_ids(db, prompts[-1])]
    with_reference = [prompts[1].id, prompts[4].id]
    db.rollback()  # end the read snapshot before writing (SQLite)
    db.add_all(ReferenceLabel(prompt_id=pid, source="judge", ranking=[[1], [2]]) for pid in with_reference)
    db.commit()
    reply = client.put(f"/api/projects/{project.id}/prompts/{gold_id}/gold", json={"ranking": gold_answer}, headers=staff)
    assert reply.status_code == 200
    return project, staff, annotators, researcher


def _response_ids(db, prompt) -> list[int]:
    from app.models import Response

    return list(db.scalars(select(Response.id).where(Response.prompt_id == prompt.id).order_by(Response.position)))


def stored(db, project) -> dict[int, dict]:
    """Each prompt's facts, computed in Python from the stored rows (not through the browser's SQL)."""
    db.rollback()
    now = datetime.now(UTC)
    facts = {}
    referenced = set(db.scalars(select(ReferenceLabel.prompt_id)))
    for p in db.scalars(select(Prompt).where(Prompt.project_id == project.id)):
        text_words = set(re.findall(r"\w+", " ".join(m["content"] for m in p.messages).lower()))
        facts[p.id] = {
            "words": text_words,
            "complete": p.completed_count >= p.target_overlap and not p.is_gold,
            "held": False,
            "annotators": set(),
            "flagged": False,
            "skipped": False,
            "gold": p.is_gold,
            "has_reference": p.id in referenced,
            "agreement": p.agreement,
        }
    for a in db.scalars(select(Annotation).where(Annotation.project_id == project.id)):
        facts[a.prompt_id]["annotators"].add(a.annotator_id)
        facts[a.prompt_id]["flagged"] |= a.flag is not None
    for s in db.scalars(select(Assignment).where(Assignment.project_id == project.id)):
        facts[s.prompt_id]["skipped"] |= s.status == "skipped"
        facts[s.prompt_id]["held"] |= s.status == "leased" and as_utc(s.lease_expires_at) > now
    for f in facts.values():
        f["status"] = "complete" if f["complete"] else "in_progress" if f["held"] else "open"
    return facts


def walk(client, project, headers, limit=3, **params) -> list[dict]:
    """Every page of a query, following next_cursor."""
    items, cursor = [], None
    for _ in range(100):
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"/api/projects/{project.id}/prompts", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def expected(facts: dict[int, dict], **f) -> set[int]:
    def keep(x: dict) -> bool:
        a = x["agreement"]
        return (
            ("status" not in f or x["status"] == f["status"])
            and ("q" not in f or set(re.findall(r"\w+", f["q"].lower())) <= x["words"])
            and ("min_agreement" not in f or (a is not None and a >= f["min_agreement"]))
            and ("max_agreement" not in f or (a is not None and a <= f["max_agreement"]))
            and ("annotator" not in f or f["annotator"] in x["annotators"])
            and all(k not in f or x[k] == f[k] for k in ("flagged", "skipped", "gold", "has_reference"))
        )

    return {pid for pid, x in facts.items() if keep(x)}


def test_stored_agreement_is_the_reports_per_prompt_value(client, db, campaign):
    project, staff, *_ = campaign
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    facts = stored(db, project)
    by_prompt = {row["prompt_id"]: row["agreement"] for row in report["prompts"]}
    assert any(v is not None for v in by_prompt.values()) and len({v for v in by_prompt.values()}) >= 2
    for pid, x in facts.items():
        assert x["agreement"] == pytest.approx(by_prompt.get(pid)) if by_prompt.get(pid) is not None else x["agreement"] is None
    # And the API rows carry it.
    assert {i["id"]: i["agreement"] for i in walk(client, project, staff, limit=50)} == {
        p: x["agreement"] for p, x in facts.items()
    }


def test_each_filter_and_combinations_match_the_stored_rows(client, db, campaign):
    project, staff, annotators, _ = campaign
    facts = stored(db, project)
    # The campaign has something in every bucket, so no filter passes by returning everything or nothing.
    for key in ("flagged", "skipped", "gold", "has_reference"):
        assert 0 < sum(x[key] for x in facts.values()) < len(facts), key
    assert {x["status"] for x in facts.values()} == {"open", "in_progress", "complete"}
    scored = sorted(x["agreement"] for x in facts.values() if x["agreement"] is not None)
    middle = scored[len(scored) // 2]
    single = [
        {"status": "open"},
        {"status": "in_progress"},
        {"status": "complete"},
        {"q": "apple"},
        {"q": "Banana CHERRY"},
        {"q": "zebra"},
        {"min_agreement": middle},
        {"max_agreement": middle},
        {"min_agreement": 0.0, "max_agreement": 1.0},
        {"annotator": annotators[0].id},
        {"annotator": annotators[3].id},
        *({k: v} for k in ("flagged", "skipped", "gold", "has_reference") for v in (True, False)),
    ]
    combined = [a | b for a, b in itertools.combinations(single, 2) if not a.keys() & b.keys()][::3]
    for filters in single + combined:
        got = [i["id"] for i in walk(client, project, staff, limit=4, **filters)]
        assert len(got) == len(set(got)), filters
        assert set(got) == expected(facts, **filters), filters
    # The status filter agrees with the project counts (one owner of the rule).
    stats = client.get(f"/api/projects/{project.id}/stats", headers=staff).json()
    assert len(walk(client, project, staff, status="complete")) == stats["complete"]
    assert len(walk(client, project, staff, status="in_progress")) == stats["in_progress"] == 1


@pytest.mark.parametrize("sort", ["-date", "date", "agreement", "-agreement"])
def test_cursor_pagination_visits_every_prompt_once_in_order(client, db, campaign, sort):
    project, staff, *_ = campaign
    facts = stored(db, project)
    items = walk(client, project, staff, limit=3, sort=sort)
    ids = [i["id"] for i in items]
    assert sorted(ids) == sorted(facts)  # every prompt, none twice
    if sort in ("date", "-date"):
        assert ids == sorted(ids, reverse=sort == "-date")  # ids follow import order
    else:
        low_first = sort == "agreement"
        scored = [(i["agreement"], i["id"]) for i in items if i["agreement"] is not None]
        assert [i["agreement"] for i in items[len(scored) :]] == [None] * (len(items) - len(scored))  # unscored last
        want = sorted(scored, key=lambda t: (t[0], t[1]) if low_first else (-t[0], -t[1]))
        assert scored == want
        assert len({a for a, _ in scored}) < len(scored)  # ties exist, so the id tie-break is exercised


def test_search_finds_new_imports_and_forgets_deleted_prompts(client, db, make_user, make_project, bearer):
    project = make_project()
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, rows(0, 6, random.Random(5)))
    facts = stored(db, project)
    for word in WORDS:
        assert {i["id"] for i in walk(client, project, staff, q=word)} == expected(facts, q=word), word
    assert walk(client, project, staff, q="kumquat") == []
    upload(client, project, staff, [{"id": "new1", "prompt": "Is a kumquat citrus?", "responses": ["a", "b", "c"]}])
    found = walk(client, project, staff, q="KUMQUAT")
    assert [i["external_id"] for i in found] == ["new1"]
    assert "kumquat" in found[0]["excerpt"]
    assert walk(client, project, staff, q="kumquat citrus orange") == []  # every word must be there
    db.rollback()
    db.execute(text('UPDATE prompts SET messages = \'[{"role": "user", "content": "plain"}]\' WHERE external_id = \'new1\''))
    db.commit()
    assert walk(client, project, staff, q="kumquat") == [] and len(walk(client, project, staff, q="plain")) == 1
    db.execute(text("DELETE FROM prompts WHERE external_id = 'new1'"))
    db.commit()
    assert walk(client, project, staff, q="plain") == []


def test_search_uses_the_index_on_postgresql(db, campaign):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner")
    from app.prompts.search import PG_DOCUMENT

    db.rollback()
    db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = db.execute(text(f"EXPLAIN SELECT id FROM prompts WHERE {PG_DOCUMENT} @@ plainto_tsquery('simple', 'apple')")).all()
    assert "ix_prompts_search" in " ".join(r[0] for r in plan)


def test_agreement_follows_new_labels(client, db, make_user, make_project, bearer):
    """After each submit the stored value equals the report's per-prompt value for that prompt."""
    annotators = [make_user(Role.annotator) for _ in range(3)]
    project = make_project(members=annotators, overlap=3)
    staff = bearer(make_user(Role.admin))
    upload(client, project, staff, [{"id": "only", "prompt": "one", "responses": ["a", "b", "c"]}])
    seen = []
    for n, user in enumerate(annotators):
        task = client.get(f"/api/projects/{project.id}/next", headers=bearer(user)).json()
        ids = sorted(r["id"] for r in task["responses"])
        order = ids if n != 1 else list(reversed(ids))
        assert (
            client.post(
                f"/api/tasks/{task['task_id']}/annotations", json={"ranking": [[i] for i in order]}, headers=bearer(user)
            ).status_code
            == 201
        )
        report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
        item = walk(client, project, staff)[0]
        want = report["prompts"][0]["agreement"]
        assert item["agreement"] == (pytest.approx(want) if want is not None else None)
        seen.append(item["agreement"])
    assert seen[0] is None and seen[1] == 0.0 and seen[2] == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "done"}, "status"),
        ({"min_agreement": "2"}, "min_agreement"),
        ({"max_agreement": "x"}, "max_agreement"),
        ({"min_agreement": "0.8", "max_agreement": "0.2"}, "max_agreement"),
        ({"annotator": "bob"}, "annotator"),
        ({"flagged": "maybe"}, "flagged"),
        ({"skipped": "2"}, "skipped"),
        ({"gold": "x"}, "gold"),
        ({"has_reference": "x"}, "has_reference"),
        ({"sort": "random"}, "sort"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor("-date", 2**40, 1)}, "cursor"),  # a driver overflow otherwise (500)
        ({"cursor": "WzFd"}, "cursor"),  # base64 of "[1]": JSON, not a cursor
        ({"annotator": str(2**40)}, "annotator"),
        ({"limit": "0"}, "limit"),
        ({"q": "!!!"}, "q"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_422_naming_them(client, make_user, make_project, bearer, params, named):
    project = make_project()
    response = client.get(f"/api/projects/{project.id}/prompts", params=params, headers=bearer(make_user(Role.researcher)))
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_a_cursor_is_for_its_own_sort(client, db, campaign):
    project, staff, *_ = campaign
    cursor = client.get(f"/api/projects/{project.id}/prompts", params={"limit": 2, "sort": "agreement"}, headers=staff).json()
    response = client.get(
        f"/api/projects/{project.id}/prompts", params={"cursor": cursor["next_cursor"], "sort": "date"}, headers=staff
    )
    assert response.status_code == 422 and "cursor" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/projects/{id}/prompts", "/projects/{id}/prompts"])
def test_who_may_browse(client, login_as, make_user, make_project, path):
    member = make_user(Role.annotator)
    outsider = make_user(Role.annotator)
    project = make_project(members=[member])
    url = path.format(id=project.id)
    anonymous = client.get(url, follow_redirects=False, headers={"Accept": "text/html"})
    assert anonymous.status_code == (401 if url.startswith("/api") else 303)  # a browser goes to the login page
    assert login_as(member).get(url).status_code == 403  # annotators never see others' labels
    assert login_as(outsider).get(url).status_code == 404
    for role in (Role.researcher, Role.admin):
        assert login_as(make_user(role)).get(url).status_code == 200
    assert login_as(make_user(Role.admin)).get(f"/api/projects/{project.id + 999}/prompts").status_code == 404


def test_page_lists_filters_and_links_each_prompt(client, db, login_as, campaign):
    project, _, annotators, researcher = campaign
    browser = login_as(researcher)
    db.rollback()  # a fresh snapshot: writing on an older one fails on SQLite
    db.execute(
        update(Prompt)
        .where(Prompt.external_id == "p2")
        .values(messages=[{"role": "user", "content": "<script>alert(1)</script> apple"}])
    )
    db.commit()
    everything = browser.get(f"/projects/{project.id}/prompts", params={"q": "apple"})
    assert "<script>alert(1)</script>" not in everything.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in everything.text
    page = browser.get(f"/projects/{project.id}/prompts", params={"q": "apple", "gold": "false", "limit": 2})
    assert page.status_code == 200
    facts = stored(db, project)
    shown = [int(x) for x in re.findall(r'data-prompt-id="(\d+)"', page.text)]
    assert len(shown) == 2 and set(shown) <= expected(facts, q="apple", gold=False)
    for pid in shown:
        assert f'href="/projects/{project.id}/prompts/{pid}"' in page.text
    href = re.search(r'<a class="button" href="([^"]+)" id="next-page"', page.text).group(1).replace("&amp;", "&")
    second = browser.get(href)
    more = [int(x) for x in re.findall(r'data-prompt-id="(\d+)"', second.text)]
    assert "gold=false" in href and "limit=2" in href
    assert more and not set(more) & set(shown) and set(more) <= expected(facts, q="apple", gold=False)
    # The form keeps the filters, and blank fields mean "any".
    assert 'value="apple"' in page.text
    blank = browser.get(
        f"/projects/{project.id}/prompts", params={"q": "", "status": "", "min_agreement": "", "gold": "", "annotator": ""}
    )
    assert blank.status_code == 200 and len(re.findall(r"data-prompt-id=", blank.text)) == len(facts)
    assert browser.get(f"/projects/{project.id}/prompts", params={"min_agreement": "3"}).status_code == 422
    # The project page links here for staff.
    assert f'href="/projects/{project.id}/prompts"' in browser.get(f"/projects/{project.id}").text
    assert "prompts-link" not in login_as(annotators[0]).get(f"/projects/{project.id}").text


def test_the_migration_backfills_agreement_search_and_skip_times(tmp_path):
    """Labels and skips stored before 0009_prompt_browser: after it, each prompt's agreement is the report's value,
    the old prompts are searchable and old skips have a time (their lease's start)."""
    from alembic import command
    from sqlalchemy.orm import Session

    from app import migrate
    from app.agreement.service import project_report
    from app.config import get_settings
    from app.db import build_engine
    from app.models import Project

    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{tmp_path}/old.db"}))
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006_sessions_and_limits")
    rankings = {  # prompt -> each annotator's ranking of responses 1..3 (by position)
        1: [[0, 1, 2], [0, 1, 2], [0, 2, 1]],
        2: [[0, 1, 2], [2, 1, 0]],
        3: [[1, 0, 2]],
    }
    now = "2026-11-01 10:00:00"
    with engine.begin() as c:
        c.execute(
            text(
                f"INSERT INTO projects (id, name, kind, overlap, allow_ties, guidelines, created_at) VALUES (1, 'old', 'ranking', 3, 0, '', '{now}')"
            )
        )
        for u in range(1, 4):
            c.execute(
                text(
                    f"INSERT INTO users (id, email, name, role, is_active, created_at) VALUES ({u}, 'u{u}@x.org', 'u', 'annotator', 1, '{now}')"
                )
            )
        for p in range(1, 5):
            messages = json.dumps([{"role": "user", "content": f"old prompt number{p}"}])
            c.execute(
                text(
                    "INSERT INTO prompts (id, project_id, external_id, messages, is_chat, completed_count, active_count, "
                    f"target_overlap, is_gold, boosted) VALUES ({p}, 1, 'o{p}', :m, 0, 0, 0, 3, 0, 0)"
                ),
                {"m": messages},
            )
            for r in range(3):
                c.execute(text(f"INSERT INTO responses (id, prompt_id, position, text) VALUES ({p * 10 + r}, {p}, {r}, 'r')"))
        n = 0
        for p, orders in rankings.items():
            for u, order in enumerate(orders, start=1):
                n += 1
                tiers = json.dumps([[p * 10 + r] for r in order])
                c.execute(
                    text(
                        "INSERT INTO assignments (id, project_id, prompt_id, annotator_id, status, leased_at, lease_expires_at, "
                        f"shown_order) VALUES ({n}, 1, {p}, {u}, 'done', '{now}', '{now}', '[]')"
                    )
                )
                c.execute(
                    text(
                        "INSERT INTO annotations (id, assignment_id, project_id, prompt_id, annotator_id, kind, ranking, "
                        f"none_acceptable, shown_order, created_at) VALUES ({n}, {n}, 1, {p}, {u}, 'ranking', :t, 0, '[]', '{now}')"
                    ),
                    {"t": tiers},
                )
        c.execute(
            text(
                "INSERT INTO assignments (id, project_id, prompt_id, annotator_id, status, leased_at, lease_expires_at, "
                f"shown_order, skip_reason) VALUES (99, 1, 4, 1, 'skipped', '{now}', '{now}', '[]', 'old skip')"
            )
        )
    migrate.upgrade(engine)
    with Session(engine) as session:
        report = project_report(session=session, project=session.get_one(Project, 1))
        stored = dict(session.execute(select(Prompt.id, Prompt.agreement)).all())
        assert stored[1] == pytest.approx(report.prompts[0].agreement) and stored[1] is not None
        assert stored[2] == pytest.approx(report.prompts[1].agreement) == 0.0
        assert stored[3] is None and stored[4] is None
        found = session.execute(text("SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH 'number3'")).scalars().all()
        assert found == [3]
        skip = session.get_one(Assignment, 99)
        assert skip.skipped_at is not None and skip.skipped_at == skip.leased_at
    engine.dispose()
