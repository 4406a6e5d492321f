"""/docs (Swagger UI) and /redoc (ReDoc) render the API's operations in Chromium under the app's CSP, with every
script served by the app itself (no request leaves the server's origin)."""

import re

from playwright.sync_api import Page, expect

from tests.browser.helpers import console_errors, requires_browser

pytestmark = requires_browser


def requests_elsewhere(page: Page, origin: str) -> list[str]:
    """URLs the page fetched from outside the app's origin (a CDN, fonts, a validator badge); one the CSP refuses
    is no fetch (Playwright reports it as failed, not finished)."""
    outside: list[str] = []
    page.on(
        "requestfinished",
        lambda request: None if request.url.startswith((origin, "data:", "blob:")) else outside.append(request.url),
    )
    return outside


def test_swagger_ui_lists_the_operations(page: Page, server, screenshot_dir):
    errors, outside = console_errors(page), requests_elsewhere(page, server.url)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/docs")
    operation = (
        page.locator(".opblock-summary", has_text="/api/projects")
        .filter(has=page.locator(".opblock-summary-method", has_text="GET"))
        .first
    )
    expect(operation).to_be_visible()
    export_path = re.compile(r"^/api/projects/\{project_id\}/export$")  # not .../export/preview
    expect(page.locator(".opblock-summary-path").filter(has_text=export_path)).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()  # the schema's security schemes
    page.screenshot(path=screenshot_dir / "api-docs-swagger.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshot_dir / "api-docs-swagger-390.png")
    assert errors == [] and outside == []


def test_redoc_lists_the_operations(page: Page, server, screenshot_dir):
    errors, outside = console_errors(page), requests_elsewhere(page, server.url)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/redoc")
    expect(page.get_by_role("heading", name="Preflab")).to_be_visible()
    expect(page.get_by_role("menuitem", name="Api List Projects")).to_be_visible()  # the sidebar's entry for GET /api/projects
    expect(page.get_by_text("/api/projects/{project_id}/export").first).to_be_attached()
    page.screenshot(path=screenshot_dir / "api-docs-redoc.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshot_dir / "api-docs-redoc-390.png")
    # ReDoc's "API docs by Redocly" footer points at a logo on its CDN; the CSP refuses it, and nothing else is refused.
    assert [e for e in errors if "cdn.redoc.ly/redoc/logo-mini.svg" not in e] == [] and outside == []
