"""My labels in a real browser: the list and the revise page at desktop and phone widths, untrusted text inert.
(The workbench's revise-mode behaviour belongs to static/js/annotate/; here the server's side: what the pages hold.)"""

import json

from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import ANNOTATOR, WIDTHS, csrf, login, requires_browser, seed_project
from tests.browser.test_annotate import console_errors

pytestmark = requires_browser


def test_my_labels_and_the_revise_page(page: Page, browser: Browser, server, screenshot_dir):
    rows = [
        {"id": "ml-1", "prompt": "Explain <script>window.__pwned = 1</script> in one line", "responses": ["a", "b", "c"]},
        {"id": "ml-2", "prompt": "A long question " + "about many things " * 30, "responses": ["x", "y"]},
        {"id": "ml-3", "prompt": "Short", "responses": ["p", "q"]},
    ]
    project_id = seed_project(browser, server.url, name="My labels check", kind="ranking", rows=rows)

    errors = console_errors(page)
    login(page, ANNOTATOR)
    mine = {"X-CSRF-Token": csrf(page)}
    tasks = []
    while (next_task := page.request.get(f"/api/projects/{project_id}/next")).status == 200:
        task = next_task.json()
        ranking = [[r["id"]] for r in task["responses"]]
        assert (
            page.request.post(f"/api/tasks/{task['task_id']}/annotations", headers=mine, data={"ranking": ranking}).status == 201
        )
        tasks.append(task)
    revised = tasks[0]
    again = page.request.put(
        f"/api/tasks/{revised['task_id']}/annotations",
        headers=mine,
        data={"ranking": [[r["id"]] for r in revised["responses"]][::-1], "rationale": "on second thought"},
    )
    assert again.status == 200, again.text()

    page.goto(f"/projects/{project_id}")
    page.get_by_role("link", name="My labels").click()
    expect(page.locator("#my-labels tbody tr")).to_have_count(3)
    expect(page.locator(f'#my-labels tr[data-task="{revised["task_id"]}"] td').nth(2)).to_contain_text("1")
    expect(page.get_by_text("<script>window.__pwned = 1</script>", exact=False)).to_be_visible()  # shown as text
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshot_dir / f"my-labels-{name}.png", full_page=True)

    assert errors == [], errors  # the list page loads clean under the CSP
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(f'#my-labels tr[data-task="{revised["task_id"]}"] a').click()
    expect(page.locator("#annotate")).to_have_attribute("data-mode", "revise")
    expect(page.locator("#annotate")).to_have_attribute("data-submit-method", "PUT")
    initial = json.loads(page.locator("#annotate").get_attribute("data-initial-label"))
    assert initial["rationale"] == "on second thought" and initial["ranking"] == [[r["id"]] for r in revised["responses"]][::-1]
    expect(page.locator("#revising")).to_contain_text("revised 1×")
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=screenshot_dir / f"revise-{name}.png", full_page=True)
    assert page.evaluate("window.__pwned") is None
