"""Pages showing model output render after the request's database slot is released (app.web.templating,
RenderedOnSend): on SQLite one slot serves every request, so a page rendering a huge response must not hold it."""

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, update

from app import markdown
from app.models import Assignment, Response
from app.web.templating import templates
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task

add_prompts, setup = test_queue.add_prompts, test_queue.setup  # the queue tests' fixtures


def test_another_request_completes_while_a_page_renders(app, client, db, setup, monkeypatch):
    project, (a, b), _ = setup(n_annotators=2, n_prompts=2)
    monkeypatch.setattr(app.state.database, "request_slots", 1)  # as on SQLite, on either database
    rendering, go_on = threading.Event(), threading.Event()
    real = templates.env.filters["markdown"]

    def blocking_markdown(text):
        rendering.set()
        assert go_on.wait(60)
        return real(text)

    monkeypatch.setitem(templates.env.filters, "markdown", blocking_markdown)
    with ThreadPoolExecutor(2) as pool:
        try:
            page = pool.submit(client.get, f"/projects/{project.id}/annotate", headers=a)
            assert rendering.wait(60)
            # Were the slot still held, this would wait until the render ends, i.e. forever: it times out instead.
            other = pool.submit(next_task, client, project, b).result(timeout=60)
            assert other.status_code == 200
            db.rollback()  # and the page's own work is committed before it renders: both leases are visible
            leased = select(func.count()).where(Assignment.project_id == project.id, Assignment.status == "leased")
            assert db.scalar(leased) == 2
        finally:
            go_on.set()
        shown = page.result(timeout=60)
    assert shown.status_code == 200 and shown.template.name == "annotation/task.html"
    assert int(shown.headers["content-length"]) == len(shown.content)
    assert shown.context["task"].task_id != other.json()["task_id"]


def test_a_huge_response_is_shown_as_escaped_text_under_a_notice(client, db, setup):
    project, (h,), _ = setup(n_annotators=1, n_prompts=1, k=2)
    huge = "| a | b |\n|---|---|\n" + "| <script>alert(1)</script> | x |\n" * 70_000  # ~2.3 MB
    db.execute(update(Response).where(Response.position == 0).values(text=huge))
    db.commit()
    page = client.get(f"/projects/{project.id}/annotate", headers=h)
    assert page.status_code == 200
    assert page.text.count(markdown.TOO_LARGE_NOTICE) == 1  # the huge one only; the other response is Markdown
    assert "<script>alert(1)</script>" not in page.text and page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 70_000
    task = client.get(f"/api/tasks/{page.context['task'].task_id}", headers=h).json()  # the JSON API: the text itself
    assert sorted(len(r["text"]) for r in task["responses"])[-1] == len(huge)
