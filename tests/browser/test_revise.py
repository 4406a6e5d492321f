"""Revising a label end to end in a real browser: the annotation page, "My labels" and the revise page (the server's
routes and the workbench's revise mode together, README "My labels"), down to the raw export and the database."""

import json
import re

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from app.models import Annotation, AnnotationRevision
from tests.browser.helpers import ANNOTATOR, RESEARCHER, console_errors, login, requires_browser, screenshot_each_width
from tests.browser.test_workbench import chip_order, make_project, shown_ids

pytestmark = requires_browser


def raw_export(browser: Browser, url: str, project_id: int) -> list[dict]:
    """The project's raw export, fetched by the researcher."""
    context = browser.new_context(base_url=url)
    try:
        login(context.new_page(), RESEARCHER)
        response = context.request.get(f"/api/projects/{project_id}/export?format=raw")
        assert response.ok, response.text()
        return [json.loads(line) for line in response.text().splitlines() if line]
    finally:
        context.close()


def label_of(db, task_id: int) -> Annotation:
    """The label stored on the task (the page moves on as the POST answers, so its body is read here)."""
    with db() as session:
        row = session.scalar(select(Annotation).where(Annotation.assignment_id == task_id))
        assert row is not None, f"no label on task {task_id}"
        return row


def stored_rows(db, annotation_id: int) -> tuple[Annotation, int]:
    """The annotation row as committed, and how many revisions of it are kept."""
    with db() as session:
        row = session.get(Annotation, annotation_id)
        assert row is not None
        revisions = session.scalar(
            select(func.count()).select_from(AnnotationRevision).where(AnnotationRevision.annotation_id == annotation_id)
        )
        return row, revisions


def open_revise_page(page: Page, project_id: int, task_id: int) -> None:
    """From the annotation page's "My labels" link to the label's revise page."""
    page.goto(f"/projects/{project_id}/annotate")
    page.locator("#my-labels-link").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/my-labels$"))
    page.locator(f'#my-labels tr[data-task="{task_id}"] a').click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/my-labels/{task_id}$"))
    expect(page.locator("#annotate")).to_have_attribute("data-mode", "revise")


def label_on_annotation_page(page: Page, project_id: int, keys: list[str]) -> tuple[int, dict[str, int]]:
    """The project's only task labelled on the annotation page by keyboard (the keys, then Ctrl+Enter): its
    task id and the response ids by the letters shown."""
    page.goto(f"/projects/{project_id}/annotate")
    expect(page.locator("#annotate")).to_be_visible()
    task_id = int(page.locator("#annotate").get_attribute("data-task-id"))
    ids = shown_ids(page)
    for key in keys:
        page.keyboard.press(key)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/annotations")) as answer:
        page.keyboard.press("Control+Enter")
    assert answer.value.status == 201
    expect(page.locator("#nothing-left")).to_be_visible()  # the project's only task: done
    return task_id, ids


def save(page: Page) -> dict:
    """Ctrl+Enter, sent at once (no untouched-order confirmation when revising): the PUT's answer."""
    with page.expect_response(lambda r: r.request.method == "PUT" and r.url.endswith("/annotations")) as answer:
        page.keyboard.press("Control+Enter")
    assert answer.value.status == 200, answer.value.text()
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator("#saved")).to_contain_text("Saved.")
    expect(page.locator("#confirm")).to_be_empty()
    return answer.value.json()


def test_revise_a_ranking_by_keyboard(page: Page, browser: Browser, server, db, screenshot_dir):
    project_id = make_project(browser, server.url, name="Revise ranking", responses=["alpha", "beta", "gamma"], prompts=1)
    errors = console_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, ANNOTATOR)

    # Label it first, on the annotation page: C to the top, by keyboard.
    task_id, ids = label_on_annotation_page(page, project_id, ["3", "Shift+ArrowUp", "Shift+ArrowUp"])
    first = label_of(db, task_id)
    assert first.ranking == [[ids["C"]], [ids["A"]], [ids["B"]]] and first.revision == 0

    # My labels, then the label: the workbench starts from the stored ranking, not the order shown.
    open_revise_page(page, project_id, task_id)
    assert [[ids[label]] for label in chip_order(page)] == first.ranking
    expect(page.locator("#revising")).to_be_visible()
    expect(page.locator("#submit")).to_contain_text("Save changes")
    expect(page.locator("#skip-open")).to_have_count(0)
    screenshot_each_width(page, screenshot_dir, "revise-ranking")

    # B to the top by keyboard, and save.
    page.keyboard.press("2")
    expect(page.locator("#chip-B")).to_be_focused()
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Shift+ArrowUp")
    assert chip_order(page) == ["B", "C", "A"]
    revised = save(page)
    new_ranking = [[ids["B"]], [ids["C"]], [ids["A"]]]
    assert revised["id"] == first.id and revised["ranking"] == new_ranking
    page.screenshot(path=screenshot_dir / "revise-ranking-saved.png", full_page=True)
    back = page.locator("#saved a")
    expect(back).to_have_text("Back to your labels")
    back.click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/my-labels$"))
    expect(page.locator(f'#my-labels tr[data-task="{task_id}"] td').nth(2)).to_contain_text("1")

    [row] = [r for r in raw_export(browser, server.url, project_id) if r["annotation_id"] == first.id]
    assert row["ranking"] == new_ranking
    assert row["revision"] == 1 and row["revised_at"]
    annotation, revisions = stored_rows(db, first.id)
    assert annotation.ranking == new_ranking and annotation.revision == 1 and annotation.revised_at is not None
    assert revisions == 1
    with db() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Annotation).where(Annotation.assignment_id == annotation.assignment_id)
            )
            == 1
        )
        [kept] = session.scalars(select(AnnotationRevision).where(AnnotationRevision.annotation_id == first.id)).all()
        assert kept.ranking == first.ranking  # the version replaced

    assert errors == [], errors  # the annotation page, the list and the revise page, all clean under the CSP


def test_revise_a_pairwise_choice(page: Page, browser: Browser, server, db, screenshot_dir):
    project_id = make_project(
        browser, server.url, name="Revise pairwise", responses=["left", "right"], prompts=1, kind="pairwise"
    )
    errors = console_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, ANNOTATOR)

    task_id, ids = label_on_annotation_page(page, project_id, ["a"])
    first = label_of(db, task_id)
    assert first.ranking == [[ids["A"]], [ids["B"]]]

    open_revise_page(page, project_id, task_id)
    expect(page.locator('#choices input[value="A"]')).to_be_checked()  # starts from the stored choice
    screenshot_each_width(page, screenshot_dir, "revise-pairwise")

    page.keyboard.press("b")
    expect(page.locator('#choices input[value="B"]')).to_be_checked()
    revised = save(page)
    assert revised["id"] == first.id and revised["ranking"] == [[ids["B"]], [ids["A"]]]

    [row] = [r for r in raw_export(browser, server.url, project_id) if r["annotation_id"] == first.id]
    assert row["ranking"] == [[ids["B"]], [ids["A"]]] and row["revision"] == 1 and row["revised_at"]
    annotation, revisions = stored_rows(db, first.id)
    assert annotation.ranking == [[ids["B"]], [ids["A"]]] and revisions == 1
    assert errors == [], errors
