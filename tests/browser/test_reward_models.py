"""The demo's reward models in a real browser, at desktop and phone widths: the list, the report, a refused upload."""

from playwright.sync_api import Page, expect

from tests.browser.helpers import RANKING_PROJECT, RESEARCHER, login, requires_browser, screenshot_each_width

pytestmark = requires_browser


def test_researcher_opens_the_reward_model_report(page: Page, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    page.locator("#reward-models-link").click()
    expect(page.locator("h1")).to_contain_text("Reward models")
    expect(page.locator('#rm-table tr[data-rm="rm-demo"]')).to_have_count(1)
    screenshot_each_width(page, screenshot_dir, "reward-model-list")
    page.get_by_role("link", name="rm-demo").click()
    expect(page.locator('#rm-accuracy tr[data-row="ceiling"]')).to_contain_text("%")
    expect(page.locator("#rm-calibration svg .calibration-point").first).to_be_visible()
    screenshot_each_width(page, screenshot_dir, "reward-model")


def test_a_bad_score_file_is_refused_line_by_line(page: Page, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}/reward-models")
    rows = b'{"prompt_id": "no-such-prompt", "response": 0, "score": 1.5}\n{"prompt_id": 1, "score": "high"}\n'
    form = page.locator("#rm-upload form")
    form.locator('input[name="name"]').fill("rm-broken")
    form.locator('input[type="file"]').set_input_files(
        {"name": "broken.jsonl", "mimeType": "application/x-ndjson", "buffer": rows}
    )
    form.get_by_role("button", name="Upload").click()
    result = page.locator("#rm-result")
    expect(result).to_contain_text("Nothing was stored")
    expect(result).to_contain_text("line 1")
    expect(result).to_contain_text("line 2")
    expect(page.locator('#rm-table tr[data-rm="rm-broken"]')).to_have_count(0)
    screenshot_each_width(page, screenshot_dir, "reward-model-refused")
