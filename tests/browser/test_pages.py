"""Logging in, uploading prompts through the project page's form, downloading an export, in a real browser."""

import json
import re
from itertools import combinations

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import func, select

from app.models import Annotation, Prompt, Response
from tests.browser.helpers import ADMIN, ANNOTATOR, PASSWORD, RANKING_PROJECT, RESEARCHER, csrf, login, requires_browser

pytestmark = requires_browser


def new_project(admin: BrowserContext, token: str, name: str, *, members: tuple[str, ...] = ()) -> int:
    created = admin.request.post(
        "/api/projects", headers={"X-CSRF-Token": token}, data={"name": name, "kind": "ranking", "overlap": 1, "allow_ties": True}
    )
    assert created.status == 201, created.text()
    project_id = created.json()["id"]
    for email in members:
        added = admin.request.post(f"/projects/{project_id}/members", headers={"X-CSRF-Token": token}, form={"email": email})
        assert added.ok, added.text()
    return project_id


def prompt_count(db, project_id: int) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id))


def test_log_in(page: Page, server, screenshot_dir):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))  # anonymous: sent to the login page
    page.screenshot(path=screenshot_dir / "login.png", full_page=True)
    page.get_by_label("Email").fill(ANNOTATOR)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.context.request.get("/api/me").status == 401  # no session from a failed login
    page.screenshot(path=screenshot_dir / "login-failed.png", full_page=True)

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("link", name=RANKING_PROJECT)).to_be_visible()
    expect(page.locator(".whoami")).to_contain_text("annotator")
    me = page.context.request.get("/api/me")  # the browser's session cookie, as the server sees it
    assert me.ok and me.json()["email"] == ANNOTATOR and me.json()["role"] == "annotator"
    page.screenshot(path=screenshot_dir / "projects.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    assert page.context.request.get("/api/me").status == 401


GOOD = [
    {"id": "up-1", "prompt": "Name a prime number.", "responses": ["7", "8", "9"]},
    {"id": "up-2", "prompt": "Capital of France?", "responses": ["Paris", "Lyon"]},
    {"id": "up-3", "prompt": "2 + 2?", "responses": ["4", "5", "22", "four"]},
]
BAD = [
    {"id": "bad-1", "prompt": "A fine prompt", "responses": ["fine", "also fine"]},  # valid, yet not imported
    {"id": "bad-2", "prompt": "Second", "responses": ["ok", ""]},  # line 2: empty response
    {"id": "bad-3", "responses": ["x", "y"]},  # line 3: no prompt
]


def jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_admin_uploads_through_the_form(page: Page, db, server, screenshot_dir):
    login(page, ADMIN)
    project_id = new_project(page.context, csrf(page), "Upload check")
    page.goto(f"/projects/{project_id}")
    upload = page.locator("#upload")
    upload.locator("input[type=file]").set_input_files(
        {"name": "good.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl(GOOD)}
    )
    upload.get_by_role("button", name="Upload").click()
    expect(page.locator("#import-result")).to_have_text("Imported 3, skipped 0 already present.")
    expect(page.locator("#stat-prompts")).to_have_text("3")
    page.screenshot(path=screenshot_dir / "upload-ok.png", full_page=True)
    with db() as session:
        stored = {
            p.external_id: [
                r.text for r in session.scalars(select(Response).where(Response.prompt_id == p.id).order_by(Response.position))
            ]
            for p in session.scalars(select(Prompt).where(Prompt.project_id == project_id))
        }
    assert stored == {row["id"]: row["responses"] for row in GOOD}

    upload.locator("input[type=file]").set_input_files(
        {"name": "bad.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl(BAD)}
    )
    upload.get_by_role("button", name="Upload").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Nothing was imported: 2 errors.")
    errors = result.locator("li").all_inner_texts()
    assert len(errors) == 2, errors
    assert errors[0].startswith('line 2, field "responses[1]') and "empty" in errors[0], errors
    assert errors[1].startswith('line 3, field "prompt"'), errors
    expect(page.locator("#stat-prompts")).to_have_text("3")
    page.screenshot(path=screenshot_dir / "upload-errors.png", full_page=True)
    assert prompt_count(db, project_id) == 3  # line 1 was valid, and still nothing of the file was stored

    # Uploading the good file again: its ids are already there.
    upload.locator("input[type=file]").set_input_files(
        {"name": "good.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl(GOOD)}
    )
    upload.get_by_role("button", name="Upload").click()
    expect(page.locator("#import-result")).to_have_text("Imported 0, skipped 3 already present.")
    assert prompt_count(db, project_id) == 3


def test_researcher_downloads_an_export(page: Page, new_context, db, server, screenshot_dir, tmp_path):
    admin = new_context()
    admin_page = admin.new_page()
    login(admin_page, ADMIN)
    token = csrf(admin_page)
    project_id = new_project(admin, token, "Export check", members=(ANNOTATOR,))
    row = {"id": "ex-1", "prompt": "Best fruit?", "responses": ["apple", "banana", "cherry", "date"]}
    imported = admin.request.post(
        f"/api/projects/{project_id}/imports",
        headers={"X-CSRF-Token": token},
        multipart={"file": {"name": "one.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl([row])}},
    )
    assert imported.ok, imported.text()

    # The annotator labels it in the browser: cherry first, apple and date tied, banana last.
    annotator = new_context()
    annotator_page = annotator.new_page()
    login(annotator_page, ANNOTATOR)
    annotator_page.goto(f"/projects/{project_id}/annotate")
    label_of = {annotator_page.locator(f"#card-{label} .response-text").inner_text().strip(): label for label in "ABCD"}
    by_text = {text: int(annotator_page.locator(f"#card-{label}").get_attribute("data-id")) for text, label in label_of.items()}
    key = {text: str("ABCD".index(label) + 1) for text, label in label_of.items()}  # "1" focuses response A
    annotator_page.keyboard.press(key["cherry"])
    for _ in range(3):
        annotator_page.keyboard.press("Shift+ArrowUp")
    annotator_page.keyboard.press(key["banana"])
    for _ in range(3):
        annotator_page.keyboard.press("Shift+ArrowDown")
    order = annotator_page.locator("#ranking .chip").evaluate_all("cards => cards.map(c => c.dataset.label)")
    assert order[0] == label_of["cherry"] and order[3] == label_of["banana"], order
    annotator_page.keyboard.press(str("ABCD".index(order[2]) + 1))
    annotator_page.keyboard.press("t")  # the third card ties with the second: apple and date
    annotator_page.keyboard.press("Control+Enter")
    expect(annotator_page.locator("#nothing-left")).to_be_visible()

    with db() as session:
        [label] = session.scalars(select(Annotation).where(Annotation.project_id == project_id)).all()
        expected = {
            (by_text["cherry"], by_text["apple"]),
            (by_text["cherry"], by_text["date"]),
            (by_text["cherry"], by_text["banana"]),
            (by_text["apple"], by_text["banana"]),
            (by_text["date"], by_text["banana"]),
        }  # apple = date: no pair between them
        pairs = {
            (better, worse)
            for i, j in combinations(range(len(label.ranking)), 2)
            for better in label.ranking[i]
            for worse in label.ranking[j]
        }
        assert pairs == expected, label.ranking
        label_id, annotator_id = label.id, label.annotator_id

    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    page.screenshot(path=screenshot_dir / "project-researcher.png", full_page=True)
    with page.expect_download() as info:
        page.get_by_test_id("export-download").click()
    download = info.value
    assert download.suggested_filename.endswith(".jsonl")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    text = {rid: t for t, rid in by_text.items()}
    assert len(lines) == len(expected)
    assert {(r["chosen_response_id"], r["rejected_response_id"]) for r in lines} == expected
    for r in lines:  # the default template is hh: TRL's prompt + chosen reads as one transcript
        assert (r["prompt"], r["prompt_id"], r["annotation_id"], r["annotator_id"]) == (
            "\n\nHuman: Best fruit?\n\nAssistant:",
            "ex-1",
            label_id,
            annotator_id,
        )
        assert (r["chosen"], r["rejected"]) == (" " + text[r["chosen_response_id"]], " " + text[r["rejected_response_id"]])
