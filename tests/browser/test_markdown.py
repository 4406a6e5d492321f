"""Model output's Markdown on the annotate page in Chromium (app/markdown.py): LaTeX drawn as MathML, struck-through
text, task lists and images as their alt text, with no script and no request for the image."""

from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import ANNOTATOR, console_errors, login, requires_browser, seed_project

pytestmark = requires_browser

PROMPT = r"Solve $x^2 = 4$ for \(x\); the price went from $5 to $10."
RESPONSES = [
    "~~42~~ 43, since\n\n$$\nx = \\pm\\sqrt{4} = \\pm 2\n$$\n\n- [x] checked\n- [ ] not yet",
    "![a cat](http://example.org/cat.png) and $\\href{javascript:window.__pwned=1}{link}$ \\[\\frac{a}{b}\\]",
]


def test_math_strikethrough_and_alt_text_render(page: Page, browser: Browser, server, screenshot_dir):
    row = {"id": "md-1", "prompt": PROMPT, "responses": RESPONSES}
    project_id = seed_project(browser, server.url, name="Markdown check", kind="pairwise", rows=[row])

    errors = console_errors(page)
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url))
    login(page, ANNOTATOR)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/projects/{project_id}/annotate")
    main = page.locator("main")
    expect(main.locator('math[display="inline"]').first).to_be_visible()
    assert main.locator("math").count() == 5  # x^2 = 4, x, the $$ block, link, a/b; the prices stay text
    expect(main).to_contain_text("the price went from $5 to $10.")
    box = main.locator('math[display="block"]').first.bounding_box()
    assert box and box["height"] > 10 and box["width"] > 30  # drawn, not an empty element
    expect(main.locator("s", has_text="42")).to_be_visible()
    expect(main).to_contain_text("[image: a cat]")
    expect(main.locator("input.task-list-item-checkbox[checked]")).to_be_disabled()
    assert main.locator("img, script, [href^='javascript' i], [style]").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=screenshot_dir / "markdown-math.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshot_dir / "markdown-math-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == [] and elsewhere == []
