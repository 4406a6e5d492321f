"""The annotation page in a real browser: keyboard ranking, drag and drop, pairwise keys, skip, untrusted text."""

import json
import re

from playwright.sync_api import BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import func, select

from app.models import Annotation, Assignment, User
from tests.browser.helpers import (
    ADMIN,
    ANNOTATOR,
    PAIRWISE_PROJECT,
    RANKING_PROJECT,
    console_errors,
    csrf,
    login,
    requires_browser,
)

pytestmark = requires_browser


def open_task(page: Page, project_id: int) -> None:
    page.goto(f"/projects/{project_id}/annotate")
    expect(page.locator("#annotate")).to_be_visible()


def shown_ids(page: Page) -> dict[str, int]:
    """Response label ("A") -> id, as the page shows them."""
    cards = page.locator("[data-label][data-id]")
    return {cards.nth(i).get_attribute("data-label"): int(cards.nth(i).get_attribute("data-id")) for i in range(cards.count())}


def card_order(page: Page) -> list[str]:
    return page.locator("#ranking .chip").evaluate_all("chips => chips.map(c => c.dataset.label)")


def task_url(page: Page) -> str:
    return page.locator("#annotate").get_attribute("data-submit-url")


def done_count(page: Page) -> int:
    return int(page.locator("#done-count").inner_text())


def submit_with(page: Page, action) -> dict:
    """Run `action` (which submits), wait for the next task to show, return the label the server stored.

    The page may load a new page as soon as the POST answers, so the answer is read on the way by a pass-through
    route. Under heavy load that route twice saw no request although the page had stored its label and moved
    on; the POST is also watched as a network event, and read from there when the route missed it."""
    before, done = task_url(page), done_count(page)
    answers = []

    def record(route):
        try:
            sent = route.request.post_data_json
            response = route.fetch()
            answers.append((sent, response.status, response.json()))
            route.fulfill(response=response)
        except Exception as exc:  # an exception would otherwise let the request through unrecorded
            answers.append(exc)
            raise

    page.route("**/api/tasks/*/annotations", record)
    try:
        with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/annotations")) as seen:
            action()
    except PlaywrightTimeoutError as exc:  # say what the page showed instead of its label being sent
        shown = {s: page.locator(s).all_inner_texts() for s in ("#live", "#confirm", "#form-error", "#done-count")}
        raise AssertionError(f"no label was sent; the page showed {shown}, answers seen {answers}") from exc
    expect(page.locator("#done-count")).to_have_text(str(done + 1))
    page.unroute("**/api/tasks/*/annotations", record)
    assert page.locator("#annotate").count() == 0 or task_url(page) != before  # a new task, or nothing left
    if not answers:
        response = seen.value
        answers.append((response.request.post_data_json, response.status, response.json()))
    assert len(answers) == 1, answers
    [(sent, status, stored)] = answers
    assert isinstance(sent["time_spent_ms"], int) and 0 < sent["time_spent_ms"] < 600_000, sent
    assert status == 201, stored
    return stored


def submit_as_shown(page: Page) -> None:
    """Ctrl+Enter on an order never touched asks first (README, "Annotating by keyboard"); the second press sends it."""
    page.keyboard.press("Control+Enter")
    expect(page.locator("#confirm")).to_contain_text("this is the order shown")
    page.keyboard.press("Control+Enter")


def task_id(page: Page) -> int:
    return int(re.search(r"/api/tasks/(\d+)/", task_url(page)).group(1))


def from_db(db, model, row_id: int):
    """The row as the server committed it (read in a fresh session, not from the page or the response)."""
    with db() as session:
        row = session.get(model, row_id)
        assert row is not None, f"{model.__name__} {row_id} is not in the database"
        return row


def check_stored(db, answer: dict, *, email: str = ANNOTATOR) -> Annotation:
    """The label the server answered with is the one in the database, by this annotator."""
    row = from_db(db, Annotation, answer["id"])
    with db() as session:
        assert session.get(User, row.annotator_id).email == email
    assert (row.ranking, row.strength, row.flag) == (answer["ranking"], answer["strength"], answer["flag"])
    return row


def export_pairs(context: BrowserContext, project_id: int, annotation_id: int) -> set[tuple[int, int]]:
    response = context.request.get(f"/api/projects/{project_id}/export?format=trl")
    assert response.ok, response.text()
    rows = [json.loads(line) for line in response.text().splitlines() if line]
    return {(r["chosen_response_id"], r["rejected_response_id"]) for r in rows if r["annotation_id"] == annotation_id}


def test_rank_with_the_keyboard_alone(page: Page, new_context, server, db, screenshot_dir):
    errors = console_errors(page)
    login(page, ANNOTATOR)
    open_task(page, server.projects[RANKING_PROJECT])
    ids = shown_ids(page)
    assert card_order(page) == ["A", "B", "C", "D"]
    page.screenshot(path=screenshot_dir / "ranking.png", full_page=True)

    page.keyboard.press("j")  # focus enters the board at A
    page.keyboard.press("j")
    expect(page.locator("#chip-B")).to_be_focused()
    page.keyboard.press("k")
    expect(page.locator("#chip-A")).to_be_focused()
    page.keyboard.press("4")  # jump to D, move it to the top
    for _ in range(3):
        page.keyboard.press("Shift+ArrowUp")
    expect(page.locator("#live")).to_have_text("Response D: rank 1 of 4")
    page.keyboard.press("3")
    page.keyboard.press("Shift+K")
    page.keyboard.press("Alt+ArrowUp")
    assert card_order(page) == ["D", "C", "A", "B"]
    page.keyboard.press("2")
    page.keyboard.press("Shift+ArrowUp")  # D C B A
    page.keyboard.press("ArrowDown")
    expect(page.locator("#chip-A")).to_be_focused()
    page.keyboard.press("t")  # tie A with B above it
    expect(page.locator("#chip-A")).to_have_class(re.compile(r"\btied\b"))
    expect(page.locator("#live")).to_have_text("Response A: rank 3 of 3, tied with Response B")
    page.keyboard.press("4")
    page.keyboard.press("t")  # tie D (ranked first) with nothing: refused
    expect(page.locator("#live")).to_contain_text("nothing above")
    assert card_order(page) == ["D", "C", "B", "A"]
    page.screenshot(path=screenshot_dir / "ranking-keyboard-tied.png", full_page=True)

    stored = submit_with(page, lambda: page.keyboard.press("Control+Enter"))
    assert stored["ranking"] == [[ids["D"]], [ids["C"]], [ids["B"], ids["A"]]]
    assert check_stored(db, stored).shown_order == [ids[label] for label in "ABCD"]
    assert errors == []

    admin = new_context()
    login(admin.new_page(), ADMIN)
    assert export_pairs(admin, server.projects[RANKING_PROJECT], stored["id"]) == {
        (ids["D"], ids["C"]),
        (ids["D"], ids["B"]),
        (ids["D"], ids["A"]),
        (ids["C"], ids["B"]),
        (ids["C"], ids["A"]),
    }  # B and A are tied: no pair between them


def test_rank_by_drag_and_drop_and_buttons(page: Page, server, db, screenshot_dir):
    login(page, ANNOTATOR)
    open_task(page, server.projects[RANKING_PROJECT])
    ids = shown_ids(page)
    page.drag_and_drop("#chip-D", "#chip-A", target_position={"x": 40, "y": 3})
    assert card_order(page) == ["D", "A", "B", "C"]
    height = page.locator("#chip-C").bounding_box()["height"]
    page.drag_and_drop("#chip-A", "#chip-C", target_position={"x": 40, "y": height - 3})
    assert card_order(page) == ["D", "B", "C", "A"]
    page.click("#chip-C")  # the board's buttons act on the picked chip
    page.click("#label-form [data-act=tie]")  # C ties with B
    page.click("#chip-B")
    page.click("#label-form [data-act=down]")  # B leaves the tie, just below it: D C B A
    page.click("#chip-A")
    page.click("#label-form [data-act=up]")  # D C A B
    assert card_order(page) == ["D", "C", "A", "B"]
    page.click("#chip-D")
    expect(page.locator("#label-form [data-act=up]")).to_be_disabled()
    page.locator("#card-A select[data-criterion=helpfulness]").select_option("6")
    page.screenshot(path=screenshot_dir / "ranking-dnd.png", full_page=True)

    stored = submit_with(page, lambda: page.click("#submit"))
    assert stored["ranking"] == [[ids["D"]], [ids["C"]], [ids["A"]], [ids["B"]]]
    assert check_stored(db, stored).ratings == {"helpfulness": {str(ids["A"]): 6}}


def test_pairwise_with_keys(page: Page, server, db, screenshot_dir):
    errors = console_errors(page)
    login(page, ANNOTATOR)
    open_task(page, server.projects[PAIRWISE_PROJECT])
    page.screenshot(path=screenshot_dir / "pairwise.png", full_page=True)

    # Typing in a text box never triggers shortcuts.
    page.fill("#rationale", "")
    page.click("#rationale")
    page.keyboard.type("ab=tqs 12")
    expect(page.locator("#rationale")).to_have_value("ab=tqs 12")
    expect(page.locator("input[name=choice]:checked")).to_have_count(0)
    expect(page.locator("#skip-form")).to_be_hidden()
    page.keyboard.press("Escape")

    # B, no strength yet: a friendly inline error; then "w" = the second level, "better".
    ids = shown_ids(page)
    page.keyboard.press("b")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#form-error")).to_have_text("Choose how much better it is.")
    page.keyboard.press("w")
    expect(page.locator("input[name=strength][value='1']")).to_be_checked()
    stored = submit_with(page, lambda: page.keyboard.press("Control+Enter"))
    assert stored["ranking"] == [[ids["B"]], [ids["A"]]] and stored["strength"] == 1
    check_stored(db, stored)

    # A tie: no strength allowed; "q" is refused while tied.
    ids = shown_ids(page)
    page.keyboard.press("=")
    expect(page.locator("#strengths input").first).to_be_disabled()
    page.keyboard.press("q")
    expect(page.locator("#live")).to_have_text("A tie has no strength")
    stored = submit_with(page, lambda: page.keyboard.press("Control+Enter"))
    assert stored["ranking"] == [sorted(ids.values())] and stored["strength"] is None
    check_stored(db, stored)

    # A with Shift+3 (the third level); a flag without a reason shows the server's 422 inline.
    ids = shown_ids(page)
    page.keyboard.press("1")
    page.keyboard.press("Shift+Digit3")
    expect(page.locator("input[name=strength][value='2']")).to_be_checked()
    page.click("#flag-box summary")  # the flag fields fold away until wanted
    page.select_option("#flag", "harmful")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#form-error")).to_contain_text("flag_reason")
    page.fill("#flag-reason", "unsafe advice")
    stored = submit_with(page, lambda: page.keyboard.press("Control+Enter"))  # from inside the text box
    assert stored["ranking"] == [[ids["A"]], [ids["B"]]] and stored["strength"] == 2 and stored["flag"] == "harmful"
    assert check_stored(db, stored).flag_reason == "unsafe advice"
    assert [e for e in errors if "422" not in e] == []  # the deliberate 422 logs a failed resource load


def test_skip_with_a_reason(page: Page, new_context, server, db, screenshot_dir):
    login(page, ANNOTATOR)
    open_task(page, server.projects[RANKING_PROJECT])
    before, skipped = task_url(page), task_id(page)
    page.keyboard.press("s")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.keyboard.press("Enter")  # no reason yet
    expect(page.locator("#skip-error")).to_have_text("Please say why you skip this task.")
    page.keyboard.type("I can't judge this one")
    page.screenshot(path=screenshot_dir / "skip.png", full_page=True)
    with page.expect_response(lambda r: r.url.endswith("/skip")) as info:
        page.keyboard.press("Enter")
    assert info.value.status == 204
    expect(page.locator("#annotate")).not_to_have_attribute("data-submit-url", before)  # the next task

    row = from_db(db, Assignment, skipped)
    assert (row.status, row.skip_reason) == ("skipped", "I can't judge this one")
    with db() as session:
        assert session.scalar(select(func.count()).where(Annotation.assignment_id == skipped)) == 0  # no label
    admin = new_context()
    login(admin.new_page(), ADMIN)
    stats = admin.request.get(f"/api/projects/{server.projects[RANKING_PROJECT]}/stats").json()
    assert stats["skipped"] >= 1


def leases(db, project_id: int) -> list[int]:
    """The annotator's live leases in the project, oldest first."""
    with db() as session:
        return list(
            session.scalars(
                select(Assignment.id)
                .join(User, User.id == Assignment.annotator_id)
                .where(
                    User.email == ANNOTATOR,
                    Assignment.project_id == project_id,
                    Assignment.status == "leased",
                )
                .order_by(Assignment.id)
            )
        )


def test_next_task_appears_without_a_page_load(page: Page, server, db, screenshot_dir):
    project_id = server.projects[RANKING_PROJECT]
    login(page, ANNOTATOR)
    with page.expect_response(lambda r: "/annotate/prefetch" in r.url) as prefetched:
        open_task(page, project_id)
    assert prefetched.value.status == 200
    first, ids = task_id(page), shown_ids(page)
    upcoming = [t for t in leases(db, project_id) if t != first]
    assert len(upcoming) == 1, "the next task is leased in the background while this one is shown"
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.evaluate("window.__samePage = 'yes'")  # lost if the page were loaded again

    stored = submit_with(page, lambda: submit_as_shown(page))  # as shown: A B C D
    assert stored["ranking"] == [[ids[label]] for label in "ABCD"]
    assert from_db(db, Annotation, stored["id"]).assignment_id == first
    check_stored(db, stored)
    assert task_id(page) == upcoming[0]  # the prefetched task, swapped in
    page.screenshot(path=screenshot_dir / "ranking-next-task.png", full_page=True)

    # The swapped-in task works like a loaded one: its own ids, keys, drag handles, submit.
    second, ids = task_id(page), shown_ids(page)
    assert set(ids.values()) == set(from_db(db, Assignment, second).shown_order)
    expect(page.locator("#live")).to_have_text("Saved. Next task.")
    page.keyboard.press("2")
    page.keyboard.press("Shift+ArrowUp")
    assert card_order(page) == ["B", "A", "C", "D"]
    with page.expect_response(lambda r: "/annotate/prefetch" in r.url):  # the next one's, in the background
        stored = submit_with(page, lambda: page.click("#submit"))
    assert stored["ranking"] == [[ids["B"]], [ids["A"]], [ids["C"]], [ids["D"]]]
    assert from_db(db, Annotation, stored["id"]).assignment_id == second
    check_stored(db, stored)
    assert navigations == [] and page.evaluate("window.__samePage") == "yes"

    # Never more than two leases (the task on screen and the next); a reload shows the task on screen.
    third = task_id(page)
    held = leases(db, project_id)
    assert third in held and len(held) <= 2, held
    page.reload()
    assert task_id(page) == third


def test_a_prefetched_task_whose_lease_ran_out_is_not_shown(page: Page, server, db):
    """If the next task's lease expired while the annotator worked on this one, the page loads the next task
    afresh instead of showing the stale one."""
    login(page, ANNOTATOR)

    def expire(route):  # as if the prefetched lease had no time left
        response = route.fetch()
        body = re.sub(r'data-lease-seconds="\d+"', 'data-lease-seconds="0"', response.text())
        route.fulfill(response=response, body=body)

    page.route("**/annotate/prefetch*", expire)
    with page.expect_response(lambda r: "/annotate/prefetch" in r.url):
        open_task(page, server.projects[RANKING_PROJECT])
    page.unroute("**/annotate/prefetch*", expire)
    ids = shown_ids(page)
    page.evaluate("window.__samePage = 'yes'")
    stored = submit_with(page, lambda: submit_as_shown(page))
    assert stored["ranking"] == [[ids[label]] for label in "ABCD"]
    check_stored(db, stored)
    assert page.evaluate("window.__samePage") is None  # a page load, not a swap


def test_shortcut_help_toggles(page: Page, server):
    login(page, ANNOTATOR)
    open_task(page, server.projects[RANKING_PROJECT])
    expect(page.locator("#shortcuts")).to_have_attribute("open", "")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).not_to_have_attribute("open", "")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts dl")).to_be_visible()


XSS_RESPONSES = [
    "<script>window.__pwned = 1; alert('script')</script>",
    "<img src=x onerror=\"window.__pwned = 2; alert('img')\">",
    '[click me](javascript:window.__pwned=3) and <a href="javascript:alert(4)">raw link</a>',
    "<svg onload=\"window.__pwned = 5; alert('svg')\"></svg> ```\n<script>alert(6)</script>\n```",
    "x" * 5000 + " " + "https://example.org/" + "y" * 3000,
]


def test_untrusted_text_is_inert(page: Page, new_context, server, screenshot_dir):
    admin = new_context()
    admin_page = admin.new_page()
    login(admin_page, ADMIN)
    token = {"X-CSRF-Token": csrf(admin_page)}
    created = admin.request.post(
        "/api/projects",
        headers=token,
        data={
            "name": "XSS check",
            "kind": "ranking",
            "overlap": 1,
            "guidelines": "<script>window.__pwned = 7</script> [guide](javascript:alert(8))",
        },
    )
    assert created.status == 201, created.text()
    project_id = created.json()["id"]
    member = admin.request.post(f"/projects/{project_id}/members", headers=token, form={"email": ANNOTATOR})
    assert member.ok, member.text()
    row = {
        "id": "xss-1",
        "prompt": [
            {"role": "system", "content": "<img src=x onerror=alert('system')>"},
            {"role": "user", "content": "Say <script>alert('prompt')</script> " + "z" * 4000},
        ],
        "responses": [{"text": t} for t in XSS_RESPONSES],
    }
    benign = {"id": "ok-1", "prompt": "Pick one", "responses": ["fine", "also fine"]}  # shown first
    upload = admin.request.post(
        f"/api/projects/{project_id}/imports",
        headers=token,
        multipart={
            "file": {
                "name": "xss.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": (json.dumps(benign) + "\n" + json.dumps(row)).encode(),
            },
        },
    )
    assert upload.ok, upload.text()

    errors = console_errors(page)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    def check_inert():
        page.wait_for_timeout(300)  # give any injected handler (img onerror, svg onload) a chance to fire
        assert dialogs == []
        assert page.evaluate("window.__pwned") is None
        main = page.locator("main")
        expect(main).to_contain_text("<script>window.__pwned = 1; alert('script')</script>")
        expect(main).to_contain_text("<img src=x onerror=")
        expect(main).to_contain_text("<svg onload=")
        expect(main).to_contain_text('<a href="javascript:alert(4)">raw link</a>')
        assert main.locator("script, img, svg, iframe, [onerror], [onload]").count() == 0
        assert main.locator("a[href^='javascript' i]").count() == 0
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # long lines wrap

    login(page, ANNOTATOR)
    open_task(page, project_id)
    expect(page.locator("#ranking")).to_contain_text("also fine")
    page.evaluate("window.__samePage = 'yes'")
    submit_as_shown(page)  # the XSS task was prefetched: it is swapped in
    expect(page.locator("#done-count")).to_have_text("1")
    assert page.evaluate("window.__samePage") == "yes"
    check_inert()
    page.reload()  # and the same task as a page load
    check_inert()
    page.screenshot(path=screenshot_dir / "xss.png", full_page=True)

    # Ranking still works on it, and then the project has nothing left for this annotator.
    page.keyboard.press("5")
    page.keyboard.press("Shift+ArrowUp")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#nothing-left")).to_be_visible()
    expect(page.locator("#done-count")).to_have_text("2")
    assert dialogs == [] and page.evaluate("window.__pwned") is None and errors == []
    page.screenshot(path=screenshot_dir / "nothing-left.png", full_page=True)
