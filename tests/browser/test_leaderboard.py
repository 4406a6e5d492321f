"""The model leaderboard of the demo project in a real browser, at desktop and phone widths."""

from playwright.sync_api import Page, expect

from tests.browser.helpers import ANNOTATOR, RANKING_PROJECT, RESEARCHER, login, requires_browser

pytestmark = requires_browser


def test_researcher_opens_the_leaderboard_from_the_project_page(page: Page, server, screenshot_dir, new_context):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    page.locator("#leaderboard-link").click()
    expect(page.locator("h1")).to_contain_text("Leaderboard")
    # The demo's models, strongest first, each with its rating and interval, the chart and the matrix.
    rows = page.locator("#leaderboard-table tbody tr")
    expect(rows).to_have_count(4)
    order = rows.evaluate_all("rows => rows.map(r => r.dataset.model)")
    assert order[0] == "atlas-70b" and "drift-1b" in order[2:], order  # (the position-biased rater's order is random)
    expect(page.locator("#ratings svg .rating-row")).to_have_count(4)
    expect(page.locator("#matrix svg rect")).to_have_count(16)
    for width, name in ((1280, "leaderboard-1280.png"), (390, "leaderboard-390.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshot_dir / name, full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width} px"  # wide charts scroll inside their card

    # Options: leave out the random rater, baseline drift-1b -> drift-1b is 1000
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_label("random@example.org").check()
    page.locator('select[name="baseline"]').select_option("drift-1b")
    page.locator("#leaderboard-apply").click()
    expect(page.locator('#leaderboard-table tr[data-model="drift-1b"] td').nth(2)).to_have_text("1000")
    expect(page.get_by_label("random@example.org")).to_be_checked()

    annotator = new_context().new_page()
    login(annotator, ANNOTATOR)
    annotator.goto(f"/projects/{project_id}")
    expect(annotator.locator("#leaderboard-link")).to_have_count(0)
    assert annotator.goto(f"/projects/{project_id}/leaderboard").status == 403
