"""Shared by the browser tests: the demo accounts, logging in, the CSRF token, the skip rule, a project to test on."""

import json
import os
import re
import shutil

import pytest
from playwright.sync_api import Browser, Page, expect

# Skipped without a browser, except in CI (.ci/run sets PREFLAB_REQUIRE_BROWSER=1): there a missing chromium fails.
requires_browser = pytest.mark.skipif(
    not shutil.which("chromium") and not os.environ.get("PREFLAB_REQUIRE_BROWSER"),
    reason="needs Debian's chromium (apt-get install chromium)",
)

PASSWORD = "preflab-demo"  # the demo accounts' (app/demo.py, `demo --known-passwords`)
ANNOTATOR, RESEARCHER, ADMIN = "annotator@example.org", "researcher@example.org", "admin@example.org"
RANKING_PROJECT, PAIRWISE_PROJECT = "Demo: assistant responses", "Demo: chosen vs rejected"


def login(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def csrf(page: Page) -> str:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


def console_errors(page: Page) -> list[str]:
    """Errors the page logs from now on (a CSP violation is one); the favicon's 404 aside."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def seed_project(browser: Browser, url: str, *, name: str, kind: str, rows: list[dict], **settings) -> int:
    """A project created through the API by the demo admin (overlap 1 unless `settings` say), the demo annotator a
    member, `rows` imported as JSONL: its id."""
    context = browser.new_context(base_url=url)
    page = context.new_page()
    login(page, ADMIN)
    token = {"X-CSRF-Token": csrf(page)}
    created = context.request.post("/api/projects", headers=token, data={"name": name, "kind": kind, "overlap": 1} | settings)
    assert created.status == 201, created.text()
    project_id = created.json()["id"]
    member = context.request.post(f"/projects/{project_id}/members", headers=token, form={"email": ANNOTATOR})
    assert member.ok, member.text()
    jsonl = "\n".join(json.dumps(row) for row in rows).encode()
    file = {"name": "rows.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl}
    upload = context.request.post(f"/api/projects/{project_id}/imports", headers=token, multipart={"file": file})
    assert upload.ok, upload.text()
    context.close()
    return project_id


WIDTHS = {"desktop": 1280, "phone": 390}


def screenshot_each_width(page: Page, screenshot_dir, stem: str) -> None:
    """The page at each width, nothing wider than the screen; back to 1280 px after."""
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        page.screenshot(path=screenshot_dir / f"{stem}-{name}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
