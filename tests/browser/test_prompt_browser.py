"""The prompt browser in a real browser: from the project page to the list, a text search sorted by agreement,
a row opening the per-prompt page; screenshots at 1280 and 390 px."""

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.models import Prompt
from tests.browser.helpers import RANKING_PROJECT, RESEARCHER, login, requires_browser

pytestmark = requires_browser


def test_researcher_browses_searches_and_opens_a_prompt(page: Page, db, server, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    with db() as session:
        texts = [p.text for p in session.scalars(select(Prompt).where(Prompt.project_id == project_id))]
    words = [set(re.findall(r"\w+", t.lower())) for t in texts]
    # The word most prompts hold, so the sort has rows to order.
    word = max(sorted(set().union(*words)), key=lambda w: (sum(w in ws for ws in words), len(w)))
    holding = {i for i, ws in enumerate(words) if word in ws}
    assert len(holding) >= 2

    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, RESEARCHER)
    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="Prompts", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/prompts$"))
    expect(page.locator("#prompts tbody tr")).to_have_count(min(len(texts), 50))
    page.screenshot(path=screenshot_dir / "prompt-browser-1280.png", full_page=True)

    page.get_by_label("Text").fill(word.upper())
    page.locator("#f-sort").select_option("agreement")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"sort=agreement"))
    rows = page.locator("#prompts tbody tr")
    expect(rows).to_have_count(min(len(holding), 50))
    shown = [c.strip() for c in rows.locator("td:nth-child(4)").all_inner_texts()]
    scores = [float(s) for s in shown if s != "—"]
    assert scores == sorted(scores) and shown[: len(scores)] == [c for c in shown if c != "—"]  # lowest first, unscored last
    for excerpt in rows.locator(".excerpt div").all_inner_texts():
        assert word in excerpt.lower() or excerpt.endswith("characters)")  # the word may lie past the excerpt
    expect(page.get_by_label("Text")).to_have_value(word.upper())  # the form keeps the filters
    page.screenshot(path=screenshot_dir / "prompt-browser-search-1280.png", full_page=True)

    first = rows.first.locator("a")
    external_id = first.inner_text()
    first.click()
    expect(page).to_have_url(re.compile(rf"/projects/{project_id}/prompts/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(external_id)
    expect(page.locator("#skips")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/projects/{project_id}/prompts?sort=-agreement")
    expect(page.locator("#prompts")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px wide)"  # the table scrolls inside itself
    page.screenshot(path=screenshot_dir / "prompt-browser-390.png", full_page=True)
