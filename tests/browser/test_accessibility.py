"""Automated accessibility checks: axe-core (npm, pinned in tests/browser/package.json; `scripts/test.sh` installs it)
injected into the login, project, annotation and dashboard pages. No serious or critical violation is allowed.

axe is injected as a script, which the app's strict Content-Security-Policy forbids: these pages are opened in a
browser context with the CSP bypassed, for this test only."""

import json
import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import ADMIN, ANNOTATOR, PAIRWISE_PROJECT, RANKING_PROJECT, RESEARCHER, login, requires_browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    requires_browser,
    pytest.mark.skipif(
        not AXE.exists() and not os.environ.get("PREFLAB_REQUIRE_BROWSER"),
        reason="needs axe-core: npm ci --prefix tests/browser (scripts/test.sh does it)",
    ),
]


@pytest.fixture
def axe_context(browser: Browser, server):
    context = browser.new_context(base_url=server.url, bypass_csp=True, viewport={"width": 1280, "height": 800})
    yield context
    context.close()


def serious_violations(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def check(page: Page, name: str, screenshot_dir: Path) -> None:
    found = serious_violations(page)
    page.screenshot(path=screenshot_dir / f"axe-{name}.png")
    assert found == [], f"{name}: " + json.dumps(found, indent=1)


def test_login_page(axe_context, screenshot_dir):
    page = axe_context.new_page()
    page.goto("/login")
    check(page, "login", screenshot_dir)


def test_project_page_and_dashboard(axe_context, server, screenshot_dir):
    page = axe_context.new_page()
    login(page, RESEARCHER)
    project_id = server.projects[RANKING_PROJECT]
    page.goto(f"/projects/{project_id}")
    check(page, "project", screenshot_dir)
    page.goto(f"/projects/{project_id}/agreement")
    check(page, "dashboard", screenshot_dir)


def test_project_page_as_admin(axe_context, server, screenshot_dir):
    page = axe_context.new_page()
    login(page, ADMIN)
    page.goto(f"/projects/{server.projects[PAIRWISE_PROJECT]}")
    check(page, "project-admin", screenshot_dir)


@pytest.mark.parametrize("project", [RANKING_PROJECT, PAIRWISE_PROJECT])
def test_annotation_pages(axe_context, server, screenshot_dir, project):
    page = axe_context.new_page()
    login(page, ANNOTATOR)
    page.goto(f"/projects/{server.projects[project]}/annotate")
    expect(page.locator("#annotate")).to_be_visible()
    check(page, "annotate-" + ("ranking" if project == RANKING_PROJECT else "pairwise"), screenshot_dir)
    page.keyboard.press("c")  # the other view, and the untouched-submit message
    page.keyboard.press("Control+Enter")
    check(page, "annotate-" + ("ranking" if project == RANKING_PROJECT else "pairwise") + "-2", screenshot_dir)
