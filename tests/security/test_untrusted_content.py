"""Untrusted text (model output, prompts, guidelines) through app.markdown, without a browser, and the
security headers on every kind of answer. tests/browser/test_annotate.py checks the same in Chromium."""

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from app.markdown import MATHML_TAGS, render_markdown
from app.web.api_docs import REDOC_CSP
from app.web.middleware import SECURITY_HEADERS
from tests.security.test_permissions import EXPECTED, ROLES, call, world  # noqa: F401  (world is a fixture)

SAFE_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "input",  # a task list's checkbox, disabled
} | MATHML_TAGS  # presentation only: what could run is an attribute (on*, href, style), checked below


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def active_parts(html: str) -> list:
    """Real elements or attributes that could run or load something (text that shows them is fine)."""
    parser = _Elements()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.found:
        if tag not in SAFE_TAGS:
            problems.append(tag)
        for name, value in attrs.items():
            if name.startswith("on") or name in {"style", "src", "srcset", "formaction"}:
                problems.append(f"{tag}[{name}]")
            if name == "href" and not re.match(r"(https?:|mailto:|#|/(?!/))", (value or "").strip(), re.IGNORECASE):
                problems.append(f"{tag}[href={value}]")
    return problems


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        '<svg onload="alert(3)"><circle r="1"/></svg>',
        "<svg><script>alert(4)</script></svg>",
        "<math><mtext><img src=x onerror=alert(5)></mtext></math>",
        "[click](javascript:alert(6))",
        "[click](JaVaScRiPt:alert(7))",
        "[click](java\tscript:alert(8))",
        "[click](&#106;avascript:alert(9))",
        "![img](javascript:alert(10))",
        '<a href="javascript:alert(11)">raw</a>',
        "[ref]\n\n[ref]: javascript:alert(12)",
        "<iframe src=//evil.example></iframe>",
        '<p style="background:url(javascript:alert(13))">x</p>',
        "**bold <b onmouseover=alert(14)>x</b>**",
        "<details open ontoggle=alert(15)>",
        "```html\n<script>alert(16)</script>\n```",
        "<!-- --><script>alert(17)</script>",
    ],
)
def test_markdown_of_hostile_text_is_inert_and_still_readable(text):
    html = str(render_markdown(text))
    assert active_parts(html) == [], html
    visible = re.sub(r"<[^>]+>", "", html)
    words = re.findall(r"alert|click|raw|bold|img|ref", text)
    assert any(w in visible for w in words) or visible.strip(), f"the text disappeared: {html!r}"


def test_html_in_markdown_is_shown_as_text():
    html = str(render_markdown("Use <b>bold</b> & <i>italics</i>"))
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "&amp;" in html and "<b>" not in html


def test_safe_links_keep_working_with_rel():
    html = str(render_markdown("[docs](https://example.org/a?b=1) and <https://example.org>"))
    assert '<a href="https://example.org/a?b=1" rel="noopener noreferrer nofollow">docs</a>' in html


def test_markdown_that_is_meant_as_markdown_renders():
    html = str(render_markdown("# Title\n\n- one\n- two\n\n`code` and **bold**\n\n| a | b |\n|---|---|\n| 1 | 2 |"))
    for tag in ("<h1>", "<li>one</li>", "<code>code</code>", "<strong>bold</strong>", "<table>", "<td>1</td>"):
        assert tag in html


def test_a_very_long_unbroken_line_is_kept_whole():
    line = "x" * 100_000
    html = str(render_markdown(line))
    assert line in html  # nothing cut; the .markdown CSS (overflow-wrap:anywhere) wraps it on screen


def test_the_stylesheet_wraps_long_lines_in_markdown():
    from app.config import ROOT

    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert re.search(r"\.markdown\s*\{[^}]*overflow-wrap:\s*anywhere", css)


# --- security headers on every answer --------------------------------------------------------------


def test_csp_allows_no_inline_script_and_no_framing():
    csp = dict(part.strip().split(" ", 1) for part in SECURITY_HEADERS["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and "unsafe" not in SECURITY_HEADERS["Content-Security-Policy"]
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("key", list(EXPECTED))
def test_every_route_answer_carries_the_security_headers(app, world, key):  # noqa: F811
    """Every route, for every kind of caller: pages, JSON, redirects, errors (401/403/404) alike. /redoc's CSP
    differs in inline styles only (tests/test_api_docs.py)."""
    expected = SECURITY_HEADERS | ({"Content-Security-Policy": REDOC_CSP} if key == "GET /redoc" else {})
    for role in ROLES:
        with TestClient(app) as client:
            response = call(client, key, world, role)
        for name, value in expected.items():
            assert response.headers.get(name) == value, (role, response.status_code, name)


def test_error_answers_carry_the_security_headers(client):
    for response in (
        client.get("/no/such/page", headers={"accept": "text/html"}),
        client.get("/api/nothing/here"),
        client.request("TRACE", "/api/projects"),
        client.post("/api/projects", content=b"{not json", headers={"content-type": "application/json"}),
    ):
        assert response.status_code >= 400
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)
