"""app.markdown: what the renderer emits is exactly what the sanitiser keeps (for every feature), the features
render as meant (strikethrough, task lists, image alt text, LaTeX as MathML, prices left alone), and hostile
input stays inert. tests/security/test_untrusted_content.py holds the general hostile-HTML cases,
tests/browser/test_annotate.py the look in Chromium."""

import re
import time
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import markdown
from app.markdown import markdown_to_html, render_markdown, sanitise
from tests.security.test_untrusted_content import active_parts

# Every construct the renderer has: CommonMark, tables, strikethrough, task lists, images, links, and math
# through as many latex2mathml commands as there are MathML elements and attributes in the safelist.
CORPUS = r"""
# h1
## h2
### h3
#### h4
##### h5
###### h6

Paragraph with *em*, **strong**, ~~42~~ 43, `code`, a line
break, [a link](https://example.org/a?b=1&c=2 "title"), <https://example.org>, [mail](mailto:a@example.org),
[relative](/projects/1) and [anchor](#top).

---

> a quote
> > nested

```python
print("<b>")
```

    indented code

1. one
2. two

3. three
   - nested

A paragraph ends that list.

7. starts at seven

- [x] done
- [ ] to do

1. [x] ordered done

| left | centre | right | none |
|:-----|:------:|------:|------|
| 1    | 2      | 3     | 4    |

![a *cat*](http://example.org/cat.png) ![](http://example.org/x.png) [![logo](http://example.org/l.png)](https://example.org)

Prices: $5 and $10, 3$ a day, $ 4 $.

Inline $e^{i\pi} + 1 = 0$, \(x_1^2\), $$\sum_{i=1}^{n} i$$ and \[\int_0^1 x\,dx\].

$$
\frac{a}{b} + \sqrt{x} + \sqrt[3]{y} + x_i^2 + \binom{n}{k} + \overbrace{a+b}^{c} + \underbrace{d}_{e} + \hat{x} + \bar{y}
$$

$$
\begin{pmatrix}1 & 2\\3 & 4\end{pmatrix} \begin{cases} 1 & x > 0\\ 0 & \text{else } <b> \end{cases}
\begin{aligned} a &= b\\ c &= d \end{aligned} \begin{array}{c|l} 1 & 2\\ \hline 3 & 4 \end{array}
$$

$\mathbb{R} \mathbf{v} \mathrm{d} \operatorname{sin} \lim_{x \to 0} \left( \frac{1}{x} \right) \not= \cancel{x} \boxed{y}$

$\color{red}{x} \hspace{1cm} \displaystyle\sum \textstyle x \large y \phantom{z} \rule{1em}{2pt} \xrightarrow{f} a \bmod b$

$\mathpunct{,} \begin{smallmatrix}1&2\\3&4\end{smallmatrix} \boldsymbol{x} \operatorname*{argmax}_x \smallint \| \underline{u}$

$\frac{1}{2}$ failing: $\begin{matrix$ and \(\frac{\)
"""


class _Events(HTMLParser):
    """HTML as parse events: serialisation details (`<br />` or `<br>`, `&nbsp;` or U+00A0, attribute order)
    are not differences."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag, tuple(sorted(attrs))))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self.events.append(("end", tag))

    def handle_data(self, data):
        if self.events and self.events[-1][0] == "data":
            self.events[-1] = ("data", self.events[-1][1] + data)
        else:
            self.events.append(("data", data))


def events(html: str) -> list[tuple]:
    parser = _Events()
    parser.feed(html)
    parser.close()
    return [e for e in parser.events if e[0] != "end" or e[1] not in {"br", "hr", "input"}]  # void: nh3 writes no end


def test_the_sanitiser_changes_nothing_the_renderer_emits():
    rendered = markdown_to_html(CORPUS)
    assert events(sanitise(rendered)) == events(rendered)


def test_the_safelist_is_what_the_renderer_uses():
    """Nothing allowed that the renderer never emits: a wider safelist is attack surface for nothing."""
    found = events(markdown_to_html(CORPUS))
    tags = {e[1] for e in found if e[0] == "start"}
    assert tags == markdown._ALLOWED_TAGS
    used = {(tag, name) for kind, tag, *rest in found if kind == "start" for name, _ in rest[0]}
    allowed = {(tag, name) for tag, names in markdown._ALLOWED_ATTRIBUTES.items() for name in names}
    allowed |= {(tag, "class") for tag in markdown._ALLOWED_CLASSES}
    allowed |= {("a", "rel")}  # written by the sanitiser too (nh3 link_rel)
    # MathML attributes are allowed on every MathML element; each must be used by some element.
    math_used = {name for tag, name in used if tag in markdown.MATHML_TAGS}
    assert math_used == markdown.MATHML_ATTRIBUTES
    assert {pair for pair in used if pair[0] not in markdown.MATHML_TAGS} == {
        pair for pair in allowed if pair[0] not in markdown.MATHML_TAGS
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~~42~~ 43", "<p><s>42</s> 43</p>"),
        (
            "- [x] done\n- [ ] to do",
            '<input class="task-list-item-checkbox" checked="checked" disabled="disabled" type="checkbox"> done',
        ),
        ("- [ ] to do", '<input class="task-list-item-checkbox" disabled="disabled" type="checkbox"> to do'),
        ("![a cat](http://x/cat.png)", "<p>[image: a cat]</p>"),
        ("![](http://x/cat.png)", "<p>[image]</p>"),
        ("![<script>](http://x/cat.png)", "<p>[image: &lt;script&gt;]</p>"),
        ("| a |\n|--:|\n| 1 |", '<td class="align-right">1</td>'),
        ("[ftp](ftp://example.org/f)", "<p>[ftp](ftp://example.org/f)</p>"),  # a scheme the sanitiser refuses: text
    ],
)
def test_features_render(text, expected):
    assert expected in str(render_markdown(text))


def math_count(html: str) -> int:
    return html.count("<math")


@pytest.mark.parametrize(
    ("text", "inline", "block"),
    [
        ("$x^2$", 1, 0),
        (r"\(x^2\)", 1, 0),
        ("$$x^2$$", 0, 1),
        (r"\[x^2\]", 0, 1),
        ("$$\nx^2\n$$", 0, 1),
        ("\\[\n\\frac{a}{b}\n\\]", 0, 1),
        ("It costs $5 and $10.", 0, 0),
        ("$5, or $ 10 $", 0, 0),  # a space after the opening or before the closing $
        ("from $3$4", 0, 0),  # the closing $ is followed by a digit
        (r"a \$x\$ escaped", 0, 0),
        ("`$x$` in code", 0, 0),
        ("```\n$$x$$\n```", 0, 0),
    ],
)
def test_math_delimiters(text, inline, block):
    html = str(render_markdown(text))
    assert (html.count('<math display="inline">'), html.count('<math display="block">')) == (inline, block), html


def test_math_becomes_mathml():
    html = str(render_markdown(r"Euler: $e^{i\pi} + 1 = 0$"))
    assert html == (
        '<p>Euler: <math display="inline"><mrow><msup><mi>e</mi><mrow><mi>i</mi><mi>π</mi></mrow></msup>'
        "<mo>+</mo><mn>1</mn><mo>=</mo><mn>0</mn></mrow></math></p>\n"
    )


@pytest.mark.parametrize("text", [r"$\begin{matrix$", r"\(\frac{\)", r"$\left( x$", r"$x^$", r"$$\sqrt$$", r"\[a_\]"])
def test_math_that_does_not_convert_shows_its_source(text):
    html = str(render_markdown(f"before {text} after"))
    assert "<math" not in html
    assert text.replace("$$", "$$") in re.sub(r"<[^>]+>", "", html).replace("&lt;", "<")


@pytest.mark.parametrize(
    "text",
    [
        "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
        '<math href="javascript:alert(1)"><mtext>x</mtext></math>',
        "<img src=x onerror=alert(1)>",
        "![x](javascript:alert(1))",
        r"$\href{javascript:alert(1)}{click}$",
        r"\(\href{javascript:alert(1)}{click}\)",
        r"$\style{background:url(javascript:alert(1))}{x}$",
        r"$\text{<img src=x onerror=alert(1)>}$",
        r"$\text{</math><img src=x onerror=alert(1)>}$",
        r"$\mathrm{<script>alert(1)</script>}$",
        r"$\color{red;background:url(x)}{x}$",
        r"$$\operatorname{<svg onload=alert(1)>}$$",
        "$" + "{" * 3000 + "x" + "}" * 3000 + "$",
        "$" + r"\frac{" * 2000 + "$",
        "$" + r"\sqrt{" * 500 + "x" + "}" * 500 + "$",
        "$" + "x" * 5_000 + "$",
        ">" * 5000 + " deep",
        "- " * 3000 + "deep",
    ],
)
def test_hostile_math_and_markdown_is_inert(text):
    rendered = markdown_to_html(text)
    html = str(render_markdown(text))
    assert active_parts(html) == [], html
    attributes = {(e[1], name) for e in events(html) if e[0] == "start" for name, _ in e[2]}
    assert {name for _, name in attributes} & {"style", "src", "xlink:href"} == set(), html
    assert {tag for tag, name in attributes if name == "href"} <= {"a"}, html  # never on MathML
    assert events(sanitise(rendered)) == events(rendered)  # nothing for the sanitiser to remove either


LATEX_PIECES = [
    *"\\{}^_&$<>\"' ax1\n",
    r"\frac",
    r"\text",
    r"\begin{matrix}",
    r"\end{matrix}",
    r"\left(",
    r"\right)",
    r"\href",
    r"\style",
    r"\color",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LATEX_PIECES), max_size=20).map("".join))
def test_any_math_renders_without_error_and_nothing_to_sanitise(source):
    for text in (f"${source}$", f"$${source}$$", f"\\({source}\\)", f"\\[{source}\\]"):
        rendered = markdown_to_html(text)
        assert events(sanitise(rendered)) == events(rendered), text
        assert active_parts(rendered) == [], text


def test_unclosed_brackets_do_not_make_rendering_quadratic():
    """Each `\\(` looks for its `\\)` within MAX_MATH_CHARS only (it once scanned the rest of the text: 20 s here)."""
    started = time.perf_counter()
    html = str(render_markdown(r"\(a " * 10_000))
    assert time.perf_counter() - started < 10  # a liveness bound for a loaded machine; about 0.5 s
    assert "<math" not in html and html.count("(a") == 10_000


HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> [x](javascript:alert(3))'


def big_table(chars: int) -> str:
    """A Markdown table of at least `chars` characters, a hostile cell in its middle row."""
    rows = ["| id | name | value |", "|---|---|---|"]
    size = sum(len(r) + 1 for r in rows)
    i = 0
    while size < chars:
        rows.append(f"| {i} | {HOSTILE if i == 500 else f'item {i}'} | {i * 3} |")
        size += len(rows[-1]) + 1
        i += 1
    return "\n".join(rows)


def test_text_over_the_budget_is_escaped_plain_text_under_a_notice():
    text = big_table(2_000_000)
    start = time.perf_counter()
    shown = str(render_markdown(text))
    seconds = time.perf_counter() - start
    assert shown.startswith(f'<p class="too-large">{markdown.TOO_LARGE_NOTICE}')
    # the whole text, escaped by the standard library's escaper, is the <pre>'s content
    pre = re.search(r'<pre class="as-text">(.*)</pre>\Z', shown, re.S)
    assert pre is not None and pre.group(1) == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "<table" not in shown and "<script" not in shown and "<img" not in shown and "<a " not in shown
    assert active_parts(shown) == []
    assert seconds < 5  # a generous ceiling against a regression to parsing (tens of seconds); bench/ times it


def test_the_budget_boundary():
    at_budget = big_table(markdown.MAX_MARKDOWN_CHARS)[: markdown.MAX_MARKDOWN_CHARS].rsplit("\n", 1)[0]
    at_budget += "\n" + "|x|y|z|".ljust(markdown.MAX_MARKDOWN_CHARS - len(at_budget) - 1, " ")
    assert len(at_budget) == markdown.MAX_MARKDOWN_CHARS
    assert "<table>" in render_markdown(at_budget) and markdown.TOO_LARGE_NOTICE not in render_markdown(at_budget)
    assert markdown.TOO_LARGE_NOTICE in render_markdown(at_budget + "x")


def test_a_cache_hit_returns_the_same_html_without_rendering_again(monkeypatch):
    text = "| a | b |\n|---|---|\n| $x^2$ | **y** |\n\n" + HOSTILE
    expected = sanitise(markdown_to_html(text))  # the uncached pipeline
    markdown._cache.clear()
    calls = []
    real = markdown.markdown_to_html
    monkeypatch.setattr(markdown, "markdown_to_html", lambda t: calls.append(t) or real(t))
    first, second = render_markdown(text), render_markdown(text)
    assert first == second == expected and len(calls) == 1
    assert render_markdown(text + " z") == sanitise(markdown_to_html(text + " z")) != first  # another text, another entry
    assert len(calls) == 2


def test_the_cache_is_bounded_by_the_length_of_what_it_holds():
    cache = markdown._RenderCache(max_chars=100)
    for i in range(10):
        cache.put(bytes([i]), markdown.Markup("x" * 30))
        assert cache.chars <= 100
    assert cache.chars == 90  # the three most recent
    assert [cache.get(bytes([i])) is not None for i in range(10)] == [False] * 7 + [True] * 3
    cache.get(bytes([7]))  # now the most recently used: survives the next put, 8 does not
    cache.put(b"new", markdown.Markup("y" * 30))
    assert cache.get(bytes([7])) is not None and cache.get(bytes([8])) is None
    cache.put(b"huge", markdown.Markup("z" * 101))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(b"huge") is None and cache.chars == 90
