"""The annotator's workbench in a real browser (issue 13): nine 5,000-word responses ranked by keyboard with the
prompt and the rank board in view throughout, compare mode, the untouched-submit confirmation, drafts kept over
a reload, revise mode, progress, and the phone's layout."""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import ANNOTATOR, login, requires_browser, seed_project
from tests.browser.long_responses import PROMPT, nine_long_responses

pytestmark = requires_browser

ROOT = Path(__file__).resolve().parents[2]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def make_project(browser: Browser, url: str, *, name: str, responses: list[str], prompts: int, kind: str = "ranking") -> int:
    """A project of `prompts` prompts with these responses, overlap 1, the demo annotator a member."""
    rows = [{"id": f"{name}-{i}", "prompt": PROMPT, "responses": responses} for i in range(prompts)]
    settings = {"allow_ties": True, "guidelines": "Rank by **helpfulness**."}
    return seed_project(browser, url, name=name, kind=kind, rows=rows, **settings)


@pytest.fixture(scope="module")
def nine(browser: Browser, server) -> int:
    return make_project(browser, server.url, name="Workbench nine", responses=nine_long_responses(), prompts=12)


@pytest.fixture(scope="module")
def two(browser: Browser, server) -> int:
    return make_project(browser, server.url, name="Workbench two", responses=nine_long_responses()[:2], prompts=3)


@pytest.fixture
def desktop(browser: Browser, server):
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Browser, server):
    context = browser.new_context(base_url=server.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield context.new_page()
    context.close()


def open_task(page: Page, project_id: int) -> None:
    page.goto(f"/projects/{project_id}/annotate")
    expect(page.locator("#annotate")).to_be_visible()


def chip_order(page: Page) -> list[str]:
    return page.locator("#ranking .chip").evaluate_all("chips => chips.map(c => c.dataset.label)")


def shown_ids(page: Page) -> dict[str, int]:
    chips = page.locator("#ranking .chip, .response")
    return {chips.nth(i).get_attribute("data-label"): int(chips.nth(i).get_attribute("data-id")) for i in range(chips.count())}


def in_view(page: Page, selector: str) -> dict:
    """The element's box, asserted to lie inside the viewport (at least its top 60 px)."""
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + min(box["height"], 60) <= viewport["height"], (selector, box)
    return box


def posted(page: Page) -> list[dict]:
    """Label submits the page sends from now on (their bodies)."""
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data_json) if r.url.endswith("/annotations") and r.method in ("POST", "PUT") else None,
    )
    return bodies


def test_rank_nine_long_responses_by_keyboard_alone(desktop: Page, nine, db, screenshot_dir):
    page = desktop
    login(page, ANNOTATOR)
    open_task(page, nine)
    ids = shown_ids(page)
    assert chip_order(page) == list("ABCDEFGHI")
    expect(page.locator("#chip-A .letter")).to_have_text("A")
    expect(page.locator("#chip-A .len")).to_have_text(re.compile(r"^\d\.\dk w$"))  # about 5,000 words
    assert len(page.locator("#chip-A .gist").inner_text().split()) >= 5  # the first words
    for label in "ABCDEFGHI":
        assert page.locator(f"#card-{label}").bounding_box()["height"] < 450, "long texts are clamped"
    prompt, board = in_view(page, "#prompt-panel"), in_view(page, "#ranking")
    page.screenshot(path=screenshot_dir / "workbench-nine.png")

    # Reverse the order by keyboard alone: pick each response by its letter, move it to the top.
    moves = 0
    for key, letter in zip("123456789", "ABCDEFGHI", strict=True):
        page.keyboard.press(key)
        expect(page.locator(f"#chip-{letter}")).to_be_focused()
        for _ in range(chip_order(page).index(letter)):
            page.keyboard.press("Shift+ArrowUp")
            moves += 1
            # After every move: the page has not scrolled, the prompt and the whole board are where they were.
            assert page.evaluate("window.scrollY") == 0
            assert in_view(page, "#prompt-panel") == prompt
            assert in_view(page, "#ranking") == board
            in_view(page, f"#chip-{letter}")
        # The picked response's text is brought into view in the reading area (which scrolls on its own).
        card, pane = page.locator(f"#card-{letter}").bounding_box(), page.locator("#reader-pane").bounding_box()
        assert pane["y"] - 1 <= card["y"] <= pane["y"] + pane["height"] - 60, (letter, card, pane)
    assert moves == 36
    assert chip_order(page) == list("IHGFEDCBA")
    expect(page.locator("#live")).to_have_text("Response I: rank 1 of 9")
    expect(page.locator("#card-I .rank-note")).to_have_text("rank 1")

    page.keyboard.press("j")  # I H → pick H, tie it with I
    page.keyboard.press("t")
    expect(page.locator("#chip-H")).to_have_class(re.compile(r"\btied\b"))
    expect(page.locator("#card-H .rank-note")).to_have_text("rank 1, tied")
    page.keyboard.press("o")  # H's text in full
    expect(page.locator("#card-H .clamp-toggle")).to_have_attribute("aria-expanded", "true")
    assert page.locator("#card-H").bounding_box()["height"] > 5000
    in_view(page, "#prompt-panel")
    in_view(page, "#ranking")
    page.screenshot(path=screenshot_dir / "workbench-nine-ranked.png")

    bodies = posted(page)
    with page.expect_response(lambda r: r.url.endswith("/annotations")) as answer:
        page.keyboard.press("Control+Enter")  # touched: sent at once
    assert answer.value.status == 201
    stored = answer.value.json()
    expected = [[ids["I"], ids["H"]]] + [[ids[label]] for label in "GFEDCBA"]
    assert stored["ranking"] == expected and bodies[0]["ranking"] == expected
    from app.models import Annotation

    with db() as session:
        assert session.get(Annotation, stored["id"]).ranking == expected


def test_compare_two_side_by_side(desktop: Page, nine, two, screenshot_dir):
    page = desktop
    login(page, ANNOTATOR)
    open_task(page, nine)
    expect(page.locator("#view-all")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("3")
    page.keyboard.press("5")  # E, picked after C
    page.keyboard.press("c")
    expect(page.locator("#view-compare")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#live")).to_have_text("Comparing C and E")
    left, right = page.locator("#card-C").bounding_box(), page.locator("#card-E").bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and left["x"] + left["width"] <= right["x"], (left, right)  # columns
    for other in "ABDFGHI":
        expect(page.locator(f"#card-{other}")).to_be_hidden()
    # Each column scrolls on its own.
    page.locator("#card-C").evaluate("c => c.scrollBy(0, 2000)")
    assert page.locator("#card-C").evaluate("c => c.scrollTop") > 1000
    assert page.locator("#card-E").evaluate("c => c.scrollTop") == 0
    in_view(page, "#prompt-panel")
    in_view(page, "#ranking")
    page.screenshot(path=screenshot_dir / "workbench-compare.png")

    page.keyboard.press("j")  # walking the board compares neighbours: E, then the one ranked below it (F)
    expect(page.locator("#card-F")).to_be_visible()
    expect(page.locator("#card-C")).to_be_hidden()
    page.select_option("#compare-left", "A")  # any two, by the menus
    expect(page.locator("#card-A")).to_be_visible()
    expect(page.locator("#card-F")).to_be_visible()
    page.keyboard.press("v")
    for label in "ABCDEFGHI":
        expect(page.locator(f"#card-{label}")).to_be_visible()

    # Two responses (pairwise, or a ranking of two): compare is where the page starts.
    open_task(page, two)
    expect(page.locator("#view-compare")).to_have_attribute("aria-pressed", "true")
    a, b = page.locator("#card-A").bounding_box(), page.locator("#card-B").bounding_box()
    assert abs(a["y"] - b["y"]) < 2 and a["x"] < b["x"]
    page.screenshot(path=screenshot_dir / "workbench-two.png")


def test_an_untouched_order_asks_before_it_is_sent(desktop: Page, nine, screenshot_dir):
    page = desktop
    login(page, ANNOTATOR)
    open_task(page, nine)
    ids = shown_ids(page)
    bodies = posted(page)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm")).to_contain_text("You have not moved anything")
    page.screenshot(path=screenshot_dir / "workbench-confirm.png")
    page.wait_for_timeout(300)
    assert bodies == []  # nothing sent yet

    page.keyboard.press("2")  # a move disarms it: the next submit goes at once
    page.keyboard.press("Shift+ArrowUp")
    expect(page.locator("#confirm")).to_be_hidden()
    page.keyboard.press("Shift+ArrowDown")  # back as shown, but deliberately
    with page.expect_response(lambda r: r.url.endswith("/annotations")) as answer:
        page.keyboard.press("Control+Enter")
    assert answer.value.json()["ranking"] == [[ids[label]] for label in "ABCDEFGHI"]

    # The next task, by mouse: the first click asks, the second sends.
    expect(page.locator("#done-count")).to_have_text(re.compile(r"\d+"))
    page.click("#submit")
    expect(page.locator("#confirm")).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/annotations")) as answer:
        page.click("#submit")
    assert answer.value.status == 201


def test_a_draft_survives_a_reload(desktop: Page, nine, screenshot_dir):
    page = desktop
    login(page, ANNOTATOR)
    open_task(page, nine)
    task = page.locator("#annotate").get_attribute("data-task-id")
    page.keyboard.press("4")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("t")  # D tied with A: [A D] B C E ...
    page.fill("#rationale", "D and A both give working code.")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    order = chip_order(page)
    assert order[:2] == ["A", "D"]

    page.reload()
    expect(page.locator("#annotate")).to_have_attribute("data-task-id", task)
    expect(page.locator("#draft-note")).to_contain_text("Draft restored")
    assert chip_order(page) == order
    expect(page.locator("#chip-D")).to_have_class(re.compile(r"\btied\b"))
    expect(page.locator("#rationale")).to_have_value("D and A both give working code.")
    expect(page.locator("#none-acceptable")).to_be_checked()
    page.screenshot(path=screenshot_dir / "workbench-draft-restored.png")

    ids = shown_ids(page)
    with page.expect_response(lambda r: r.url.endswith("/annotations")) as answer:
        page.keyboard.press("Control+Enter")  # a restored, moved order needs no confirmation
    stored = answer.value.json()
    assert stored["ranking"][0] == [ids["A"], ids["D"]] and stored["none_acceptable"] is True
    keys = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('preflab:draft:'))")
    assert not any(k.endswith(":" + task) for k in keys), keys  # cleared once sent


def test_revise_mode_starts_from_the_label_and_puts_it(desktop: Page, nine, screenshot_dir):
    """The contract the "My labels" page uses (README, "Annotating by keyboard"), checked on the ordinary page
    turned into revise mode by its attributes; the PUT is answered here, not by the server."""
    page = desktop
    login(page, ANNOTATOR)
    prefetches: list[str] = []
    page.on("request", lambda r: prefetches.append(r.url) if "/prefetch" in r.url else None)

    def as_revise(route):
        response = route.fetch()
        html = response.text()
        ids = [int(i) for i in re.findall(r'class="chip" id="chip-[A-I]" data-id="(\d+)"', html)]
        label = {
            "ranking": [[ids[2]], [ids[0], ids[1]]] + [[i] for i in ids[3:]],
            "rationale": "First try",
            "none_acceptable": False,
        }
        html = re.sub(
            r'data-mode="label" data-submit-method="POST" data-submit-url="[^"]*"',
            'data-mode="revise" data-submit-method="PUT" data-submit-url="/test/revise" data-initial-label=\''
            + json.dumps(label)
            + "'",
            html,
        )
        html = re.sub(r'\s+data-prefetch-url="[^"]*"', "", html)
        route.fulfill(response=response, body=html)

    puts: list[dict] = []

    def answer_put(route):
        puts.append({"method": route.request.method, "body": route.request.post_data_json})
        route.fulfill(status=200, content_type="application/json", body="{}")

    page.route(re.compile(r".*/annotate$"), as_revise)
    page.route("**/test/revise", answer_put)
    open_task(page, nine)
    ids = shown_ids(page)
    assert chip_order(page)[:3] == ["C", "A", "B"]
    expect(page.locator("#chip-B")).to_have_class(re.compile(r"\btied\b"))
    expect(page.locator("#rationale")).to_have_value("First try")

    page.keyboard.press("Control+Enter")  # unchanged: no confirmation when revising
    expect(page.locator("#saved")).to_be_visible()
    assert puts[0]["method"] == "PUT"
    assert puts[0]["body"]["ranking"] == [[ids["C"]], [ids["A"], ids["B"]]] + [[ids[x]] for x in "DEFGHI"]
    assert puts[0]["body"]["rationale"] == "First try"
    page.fill("#rationale", "Second thoughts")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#live")).to_have_text("Saved.")
    assert len(puts) == 2 and puts[1]["body"]["rationale"] == "Second thoughts"
    expect(page.locator("#annotate")).to_be_visible()  # stays: no next task
    assert prefetches == []  # and none leased
    page.screenshot(path=screenshot_dir / "workbench-revise-saved.png")


def test_the_phone_layout(phone: Page, nine, screenshot_dir):
    page = phone
    login(page, ANNOTATOR)
    open_task(page, nine)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    strip = page.locator("#label-form").bounding_box()
    assert strip["height"] < 200, strip  # a compact strip of letters
    for label in "ABCDEFGHI":
        box = page.locator(f"#chip-{label}").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (label, box)
    page.screenshot(path=screenshot_dir / "workbench-phone.png")

    # Tap a letter, tap "higher": the board moves it; the page does not move.
    page.locator("#chip-C").tap()
    page.locator("#label-form [data-act=up]").tap()
    page.locator("#label-form [data-act=up]").tap()
    assert chip_order(page)[:3] == ["C", "A", "B"]
    # Reading further down, the strip stays at the top of the screen and the submit button at the bottom.
    page.evaluate("window.scrollBy(0, 3000)")
    assert page.evaluate("window.scrollY") > 1000
    assert abs(page.locator("#label-form").bounding_box()["y"]) < 2
    actions = page.locator("#submit").bounding_box()
    assert actions["y"] + actions["height"] <= 844
    page.screenshot(path=screenshot_dir / "workbench-phone-scrolled.png")
    page.keyboard.press("c")
    page.evaluate("window.scrollTo(0, document.getElementById('reader').offsetTop - 200)")
    page.screenshot(path=screenshot_dir / "workbench-phone-compare.png")
    with page.expect_response(lambda r: r.url.endswith("/annotations")) as answer:
        page.locator("#submit").tap()
    assert answer.value.status == 201


def test_progress_counts_down(desktop: Page, two):
    page = desktop
    login(page, ANNOTATOR)
    open_task(page, two)
    left = int(page.locator("#left-count").inner_text())
    assert 1 <= left <= 3
    page.keyboard.press("2")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#left-count")).to_have_text(str(left - 1))
    while page.locator("#annotate").count():
        page.keyboard.press("2")
        page.keyboard.press("Shift+ArrowUp")
        with page.expect_response(lambda r: r.url.endswith("/annotations")):
            page.keyboard.press("Control+Enter")
        page.wait_for_load_state()
        page.wait_for_timeout(300)
    expect(page.locator("#nothing-left")).to_contain_text("You're done: nothing left in this project")
    expect(page.locator("#left-count")).to_have_text("0")
    expect(page.locator("#project-percent")).to_have_text("100 %")


KEY_NAMES = {"ArrowUp": "↑", "ArrowDown": "↓", "PageDown": "PgDn", "PageUp": "PgUp"}


def keys_handled(module: str) -> set[str]:
    """The single keys a module of static/js/annotate/ acts on (its `k === "…"` tests), as the help writes them."""
    source = (ROOT / "static/js/annotate" / module).read_text()
    return {KEY_NAMES.get(k, k) for k in re.findall(r'k === "([^"]+)"', source)}


@pytest.mark.parametrize(("kind", "module"), [("ranking", "ranking.js"), ("pairwise", "pairwise.js")])
def test_every_shortcut_is_listed_in_the_help(desktop: Page, server, nine, kind, module):
    """The shortcut list (`?`) names every key the page's modules act on, for each kind of project."""
    from tests.browser.helpers import PAIRWISE_PROJECT

    login(desktop, ANNOTATOR)
    open_task(desktop, nine if kind == "ranking" else server.projects[PAIRWISE_PROJECT])
    listed = set(desktop.locator("#shortcuts kbd").all_inner_texts())
    handled = keys_handled("task.js") | keys_handled(module)
    assert handled - listed == set(), f"handled but not listed: {handled - listed}"
    for combo in ("Ctrl", "Enter", "Esc", "Shift"):  # the modified keys, handled apart
        assert combo in listed
