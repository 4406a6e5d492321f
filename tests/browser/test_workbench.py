"""The annotator's workbench in a real browser (issue 13): nine 5,000-word responses ranked by keyboard with the
prompt and the rank board in view throughout, compare mode, the untouched-submit confirmation, drafts kept over
a reload, revise mode, progress, and the phone's layout."""

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import ADMIN, ANNOTATOR, csrf, login, requires_browser
from tests.browser.long_responses import PROMPT, nine_long_responses

pytestmark = requires_browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def make_project(browser: Browser, url: str, *, name: str, responses: list[str], prompts: int, kind: str = "ranking") -> int:
    """A project of `prompts` prompts with these responses, overlap 1, the demo annotator a member."""
    context = browser.new_context(base_url=url)
    page = context.new_page()
    login(page, ADMIN)
    token = {"X-CSRF-Token": csrf(page)}
    created = context.request.post(
        "/api/projects",
        headers=token,
        data={"name": name, "kind": kind, "overlap": 1, "allow_ties": True, "guidelines": "Rank by **helpfulness**."},
    )
    assert created.status == 201, created.text()
    project_id = created.json()["id"]
    member = context.request.post(f"/projects/{project_id}/members", headers=token, form={"email": ANNOTATOR})
    assert member.ok, member.text()
    rows = [{"id": f"{name}-{i}", "prompt": PROMPT, "responses": responses} for i in range(prompts)]
    upload = context.request.post(
        f"/api/projects/{project_id}/imports",
        headers=token,
        multipart={
            "file": {
                "name": "long.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": "\n".join(json.dumps(r) for r in rows).encode(),
            }
        },
    )
    assert upload.ok, upload.text()
    context.close()
    return project_id


@pytest.fixture(scope="module")
def nine(browser: Browser, server) -> int:
    return make_project(browser, server.url, name="Workbench nine", responses=nine_long_responses(), prompts=12)


@pytest.fixture(scope="module")
def two(browser: Browser, server) -> int:
    return make_project(browser, server.url, name="Workbench two", responses=nine_long_responses()[:2], prompts=3)


@pytest.fixture
def desktop(browser: Browser, server):
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser, server):
    context = browser.new_context(base_url=server.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield context.new_page()
    context.close()


def open_task(page: Page, project_id: int) -> None:
    page.goto(f"/projects/{project_id}/annotate")
    expect(page.locator("#annotate")).to_be_visible()


def test_look(desktop: Page, phone: Page, nine, two, screenshot_dir):
    for page, tag in ((desktop, "1280"), (phone, "390")):
        login(page, ANNOTATOR)
        open_task(page, nine)
        page.screenshot(path=screenshot_dir / f"workbench-nine-{tag}.png")
        page.keyboard.press("c")
        page.screenshot(path=screenshot_dir / f"workbench-compare-{tag}.png")
