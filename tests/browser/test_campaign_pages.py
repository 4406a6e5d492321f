"""Running a campaign in a real browser: your account page (change your password), an admin's reset code, the
project page's progress table and export form (errors beside the field, the preview), the dashboard headline.
Each page is photographed at 1280 and 390 px wide (artifacts/screenshots/)."""

import re

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import func, select

from app.models import Annotation, User
from tests.browser.helpers import ADMIN, PAIRWISE_PROJECT, RANKING_PROJECT, RESEARCHER, csrf, login, requires_browser

pytestmark = requires_browser

WIDTHS = (1280, 390)


def shots(page: Page, screenshot_dir, name: str) -> None:
    """The page at a desktop and a phone width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshot_dir / f"{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def new_user(admin: BrowserContext, token: str, email: str, password: str) -> int:
    made = admin.request.post(
        "/api/users", headers={"X-CSRF-Token": token}, data={"email": email, "role": "annotator", "password": password}
    )
    assert made.status == 201, made.text()
    return made.json()["id"]


def log_in_as(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))


def test_change_your_password_on_the_account_page(page: Page, new_context, screenshot_dir):
    admin = new_context()
    admin_page = admin.new_page()
    login(admin_page, ADMIN)
    new_user(admin, csrf(admin_page), "account-check@example.org", "first password 1")
    elsewhere = new_context().new_page()  # the same user in another browser
    log_in_as(elsewhere, "account-check@example.org", "first password 1")

    log_in_as(page, "account-check@example.org", "first password 1")
    page.locator(".whoami").click()  # the user menu: the name in the top bar
    expect(page).to_have_url(re.compile(r"/account$"))
    page.get_by_label("Current password").fill("not it")
    page.get_by_label("New password (8+ characters)").fill("second password 2")
    page.get_by_label("New password again").fill("second password 2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_contain_text("not your current password")
    shots(page, screenshot_dir, "account-error")

    page.get_by_label("Current password").fill("first password 1")
    page.get_by_label("New password (8+ characters)").fill("second password 2")
    page.get_by_label("New password again").fill("second password 2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-changed")).to_contain_text("1 other session signed out")
    shots(page, screenshot_dir, "account-changed")
    assert page.context.request.get("/api/me").ok  # this session stays
    assert elsewhere.context.request.get("/api/me").status == 401  # the other one ended


def test_admin_resets_a_password_with_a_code_shown_once(page: Page, new_context, screenshot_dir):
    login(page, ADMIN)
    new_user(page.context, csrf(page), "reset-check@example.org", "forgotten password")
    page.goto("/admin/users")
    row = page.locator("tr", has_text="reset-check@example.org")
    row.get_by_role("button", name="Reset password").click()
    code = page.locator("#reset-code-value").inner_text()
    assert len(code) >= 24
    shots(page, screenshot_dir, "users-reset-code")
    link = page.locator("#reset-link").get_attribute("href")

    visitor = new_context().new_page()
    visitor.goto(link)
    expect(visitor.get_by_label("Reset code")).to_have_value(code)
    visitor.get_by_label("New password (8+ characters)").fill("a new one here")
    visitor.get_by_label("New password again").fill("a new one here")
    visitor.get_by_role("button", name="Set password").click()
    expect(visitor.locator("#reset-done")).to_be_visible()
    log_in_as(visitor, "reset-check@example.org", "a new one here")

    again = new_context().new_page()  # single use
    again.goto(link)
    again.get_by_label("New password (8+ characters)").fill("yet another one")
    again.get_by_label("New password again").fill("yet another one")
    again.get_by_role("button", name="Set password").click()
    expect(again.locator("#code-error")).to_contain_text("already used")
    shots(again, screenshot_dir, "reset-used-code")


def test_member_typo_comes_back_beside_the_field(page: Page, server, screenshot_dir):
    login(page, ADMIN)
    page.goto(f"/projects/{server.projects[PAIRWISE_PROJECT]}")
    page.get_by_label("Email of the user to add").fill("anotator@example.org")
    page.locator("#add-member").get_by_role("button", name="Add").click()
    expect(page.locator("#member-error")).to_contain_text("No user has the email 'anotator@example.org'")
    expect(page.get_by_label("Email of the user to add")).to_have_value("anotator@example.org")
    page.locator("#members").scroll_into_view_if_needed()
    page.set_viewport_size({"width": 390, "height": 900})
    page.locator("#members").screenshot(path=screenshot_dir / "member-typo-390.png")


def test_progress_table_on_the_project_page(page: Page, server, db, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    table = page.locator("#progress-table")
    expect(table).to_be_visible()
    with db() as session:
        done = dict(
            session.execute(
                select(User.email, func.count())
                .join(Annotation, Annotation.annotator_id == User.id)
                .where(Annotation.project_id == project_id)
                .group_by(User.email)
            ).all()
        )
    assert done  # the demo's seeded raters
    for email, count in done.items():
        expect(table.locator(f'tr[data-annotator="{email}"] td[data-col="done"]')).to_have_text(str(count))
    expect(table.locator('tr[data-annotator="random@example.org"] td[data-col="median"]')).to_contain_text(" s")
    shots(page, screenshot_dir, "project-progress")


def test_dashboard_headline_and_careless_flag(page: Page, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    report = page.context.request.get(f"/api/projects/{project_id}/agreement").json()
    rate = report["project"]["agreement_tie_half_pooled"]["value"]
    page.goto(f"/projects/{project_id}/agreement")
    headline = page.locator("#headline")
    expect(headline).to_have_text(f"Annotators agree on {rate * 100:.0f}% of pairs; InstructGPT reported 73%.")
    assert headline.bounding_box()["y"] < page.locator("#project-metrics").bounding_box()["y"]  # first
    random_row = page.locator('tr[data-annotator="random@example.org"]')
    expect(random_row).to_have_attribute("data-careless", "true")
    expect(random_row).to_contain_text("no better than chance")
    assert random_row.locator("td.error").first.evaluate("td => getComputedStyle(td).color") == "rgb(180, 35, 24)"  # red
    # Human names, the machine key as the tooltip; charts with titled axes and values.
    name_cell = page.locator('td[data-key="agreement_tie_half_pooled"]')
    expect(name_cell).to_have_text("Agreement rate (a tie counts half, over all pairs)")
    expect(name_cell).to_have_attribute("title", "agreement_tie_half_pooled")
    expect(page.locator("svg.chart").first).to_contain_text("prompts")
    expect(page.locator("svg.chart").nth(1)).to_contain_text("agreement with the others")
    shots(page, screenshot_dir, "dashboard")


def test_export_form_shows_errors_beside_the_field_and_the_preview(page: Page, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    form = page.locator("#export-form")
    expect(form.locator(".preview-total")).to_contain_text("The download will hold")  # the preview, on load
    assert form.locator('select[name="labels"]').count() == 0  # no reference labels in the demo: not offered
    form.locator('select[name="format"]').select_option("listwise")
    form.locator('select[name="margin"]').select_option("rank_distance")
    expect(page.locator("#export-margin-error")).to_contain_text("only the pair formats")  # live, from the preview
    form.locator('input[name="folder"]').uncheck()
    form.locator('select[name="file_type"]').select_option("jsonl")
    page.locator("#export-download").click()  # the server route: the project page again, the error beside the field
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/export\?"))
    expect(page.locator("#export-errors")).to_be_visible()
    expect(page.locator("#export-margin-error")).to_contain_text("only the pair formats")
    expect(page.locator('#export-form select[name="format"]')).to_have_value("listwise")  # choices kept
    page.locator("#export").scroll_into_view_if_needed()
    shots(page, screenshot_dir, "export-form-error")

    form = page.locator("#export-form")
    form.locator('select[name="margin"]').select_option("none")
    form.locator('input[name="min_annotators"]').fill("5")
    expect(form.locator(".preview-steps")).to_contain_text("at least 5 annotators a prompt")
    expect(page.locator("#export-margin-error")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 900})
    page.locator("#export-preview").screenshot(path=screenshot_dir / "export-preview-390.png")
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.expect_download() as info:
        page.locator("#export-download").click()
    assert info.value.suggested_filename.endswith("-listwise.jsonl")
