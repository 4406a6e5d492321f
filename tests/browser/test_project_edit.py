"""The "Edit project" form in a real browser: a refused edit shows its reason next to the field, a saved one
appears in the project page's audit log; at desktop (1280 px) and phone (390 px) widths."""

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.models import Project, ProjectAudit
from tests.browser.helpers import ADMIN, csrf, login, requires_browser
from tests.browser.test_pages import new_project

pytestmark = requires_browser


@pytest.mark.parametrize("width", [1280, 390])
def test_edit_form_shows_errors_by_the_field_and_the_audit_log(page: Page, db, server, screenshot_dir, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, ADMIN)
    project_id = new_project(page.context, csrf(page), f"Edit check {width}")
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Edit project").click()
    expect(page).to_have_url(f"{server.url}/projects/{project_id}/edit")

    page.get_by_label("Overlap (annotators per prompt)").fill("0")
    page.get_by_role("button", name="Save changes").click()
    overlap_error = page.locator("#overlap-error")
    expect(overlap_error).to_have_text("Input should be greater than or equal to 1")
    expect(page.locator("#edit-errors")).to_contain_text("Nothing was changed: 1 problem, shown next to the field")
    overlap_input = page.get_by_label("Overlap (annotators per prompt)")
    expect(overlap_input).to_have_attribute("aria-invalid", "true")
    expect(overlap_input).to_have_value("0")  # the form comes back as typed
    # Next to the field: the message sits right under its input, not in a list at the top of the page.
    field_box, error_box = overlap_input.bounding_box(), overlap_error.bounding_box()
    assert field_box and error_box and 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 20
    page.screenshot(path=screenshot_dir / f"project-edit-errors-{width}.png", full_page=True)
    page.locator("#edit-form").screenshot(path=screenshot_dir / f"project-edit-form-{width}.png")

    page.get_by_label("Overlap (annotators per prompt)").fill("4")
    page.get_by_label("At most").fill("12")  # a rule of several fields: its message goes to the field to fix
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#max_responses-error")).to_have_text(
        "max_responses must be within the ranking range: 2 to 9 responses per prompt"
    )
    expect(page.locator("#overlap-error")).to_have_count(0)
    page.get_by_label("At most").fill("6")
    page.get_by_label("Guidelines for annotators").fill("Rank by **helpfulness**.")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{server.url}/projects/{project_id}")
    expect(page.locator(".markdown strong")).to_have_text("helpfulness")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("max responses")  # newest first
    overlap_row = page.locator("#audit tbody tr", has_text="overlap")
    expect(overlap_row).to_contain_text(ADMIN)
    expect(overlap_row.locator("td.value")).to_have_text(["1", "4"])  # new_project makes overlap 1
    page.locator("#audit").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / f"project-audit-{width}.png", full_page=True)
    page.locator("#audit").screenshot(path=screenshot_dir / f"project-audit-log-{width}.png")

    with db() as session:
        assert session.scalar(select(Project.overlap).where(Project.id == project_id)) == 4
        fields = session.scalars(
            select(ProjectAudit.field).where(ProjectAudit.project_id == project_id).order_by(ProjectAudit.id)
        )
        assert list(fields) == ["guidelines", "overlap", "max_responses"]
