"""The demo's reward-model report in a real browser, at desktop and phone widths."""

from playwright.sync_api import Page, expect

from tests.browser.helpers import RANKING_PROJECT, RESEARCHER, login, requires_browser

pytestmark = requires_browser


def test_researcher_opens_the_reward_model_report(page: Page, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    page.locator("#reward-models-link").click()
    expect(page.locator("h1")).to_contain_text("Reward models")
    expect(page.locator('#rm-table tr[data-rm="rm-demo"]')).to_have_count(1)
    page.get_by_role("link", name="rm-demo").click()
    expect(page.locator('#rm-accuracy tr[data-row="ceiling"]')).to_contain_text("%")
    expect(page.locator("#rm-calibration svg .calibration-point").first).to_be_visible()
    for width, name in ((1280, "reward-model-1280.png"), (390, "reward-model-390.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshot_dir / name, full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width} px"
