"""Markdown to HTML for untrusted text (model output, prompts, guidelines).

Two layers: markdown-it with raw HTML disabled escapes any HTML in the source, and nh3 (Ammonia)
then keeps only a safelist of tags, attributes and URL schemes, so `javascript:` links and event
handlers cannot survive even if the renderer had a bug. The safelist is exactly what the renderer
emits (tests/test_markdown.py renders every feature and checks the sanitiser changes nothing):

- GitHub-style strikethrough (`~~x~~`, <s>), tables (alignment as an `align-*` class: the CSP
  forbids `style`) and task lists (`- [x] done`, a disabled checkbox);
- images are never loaded (no remote request from a page showing model output): `![a cat](…)`
  shows as the text "[image: a cat]";
- LaTeX math, `$…$`, `\\(…\\)` inline and `$$…$$`, `\\[…\\]` displayed, becomes MathML on the
  server (latex2mathml), which browsers draw without a script. A `$` opens math only when a
  non-space follows it and closes it only after a non-space and before a non-digit, so prices
  ("$5 and $10") stay text. MathML keeps only the elements and attributes below (no `href`, no
  `style`); math that does not convert, or needs anything else, shows as its source text.
"""

import hashlib
import html
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from xml.etree.ElementTree import Element

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

URL_SCHEMES = {"http", "https", "mailto"}  # links with any other scheme are shown as text
LINK_REL = "noopener noreferrer nofollow"
MAX_MATH_CHARS = 4_000  # longer math shows as source text: conversion time, and the search for a closing \) or \], grow with it
# Longer text is shown as escaped plain text under TOO_LARGE_NOTICE: rendering grows with the text (about 1 s per
# 100 KB of table or inline markup on a loaded 2-core machine, more with math), and 100,000 characters (~25k
# tokens) is beyond nearly every model response. BENCHMARKS.md, "Pages with huge responses".
MAX_MARKDOWN_CHARS = 100_000
TOO_LARGE_NOTICE = "This text is too large to format; it is shown as plain text"
RENDER_CACHE_CHARS = 16_000_000  # rendered HTML kept per process (render_markdown); empty at start
TABLE_ALIGN_CLASSES = {"align-left", "align-center", "align-right"}  # static/css/app.css

# MathML that latex2mathml emits and browsers draw; presentation only (no links, no styles, no actions).
MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "mtext", "mspace", "mstyle", "mpadded", "mphantom", "mfrac", "msqrt", "mroot",
    "msub", "msup", "msubsup", "munder", "mover", "munderover", "mtable", "mtr", "mtd", "menclose",
}  # fmt: skip
MATHML_ATTRIBUTES = {
    "display", "mathvariant", "mathsize", "mathcolor", "mathbackground", "stretchy", "fence", "separator", "form",
    "lspace", "rspace", "minsize", "maxsize", "movablelimits", "largeop", "accent", "linethickness",
    "width", "height", "depth", "voffset", "scriptlevel", "displaystyle", "notation", "columnalign", "columnspacing",
    "rowspacing", "rowlines", "columnlines",
}  # fmt: skip

_MATHML_TOKENS = {"mi", "mn", "mo", "mtext"}  # HTML's "MathML text integration points"

_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "s", "code", "pre", "blockquote", "ul", "ol", "li", "input",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
} | MATHML_TAGS  # fmt: skip
_ALLOWED_ATTRIBUTES = {  # no style anywhere: the CSP forbids it
    "a": {"href", "title"},
    "code": {"class"},  # language-xxx of a fenced block
    "ol": {"start"},
    "input": {"type", "checked", "disabled"},
} | dict.fromkeys(MATHML_TAGS, MATHML_ATTRIBUTES)
_ALLOWED_CLASSES = {
    "ul": {"contains-task-list"},
    "ol": {"contains-task-list"},
    "li": {"task-list-item"},
    "input": {"task-list-item-checkbox"},
    "th": TABLE_ALIGN_CLASSES,
    "td": TABLE_ALIGN_CLASSES,
}
# A task list's checkbox shows a state; it can never be ticked nor be anything but a checkbox.
_FORCED_ATTRIBUTES = {"input": {"type": "checkbox", "disabled": "disabled"}}


class UnsafeMath(ValueError):
    """latex2mathml produced an element outside MATHML_TAGS."""


def _mathml(tex: str, *, display: bool) -> str:
    from latex2mathml.converter import convert_to_element  # at the first math, so the app starts without it

    root = convert_to_element(tex, display="block" if display else "inline")
    root.attrib.pop("xmlns", None)  # HTML's parser puts <math> in the MathML namespace by itself
    return _serialise(root)


def _serialise(element: Element) -> str:
    """Our own serialiser, not latex2mathml's: that one writes the text of \\text{…} unescaped. Text arrives
    holding character references (&#x0211D;), decoded here and escaped again."""
    if element.tag not in MATHML_TAGS:
        raise UnsafeMath(element.tag)
    attributes = "".join(f' {name}="{html.escape(value)}"' for name, value in element.attrib.items() if name in MATHML_ATTRIBUTES)
    if element.tag in _MATHML_TOKENS:  # text only: HTML parses markup inside them as HTML, not MathML
        inner = _text("".join(element.itertext()))
    else:
        inner = _text(element.text) + "".join(_serialise(child) + _text(child.tail) for child in element)
    return f"<{element.tag}{attributes}>{inner}</{element.tag}>"


def _text(text: str | None) -> str:
    return html.escape(html.unescape(text or ""), quote=False)


def render_math(tex: str, *, display: bool, source: str) -> str:
    """MathML for `tex`, or `source` (the math as written, delimiters included) as escaped text."""
    try:
        if len(tex) <= MAX_MATH_CHARS and tex.strip():
            return _mathml(tex, display=display)
    except Exception:  # latex2mathml raises many types (and RecursionError on deep nesting): all mean "not math"
        pass
    return escapeHtml(source)


_CLOSING = {"$": "$", "$$": "$$", r"\(": r"\)", r"\[": r"\]"}  # a math token's closing delimiter, by its opening one


def _math_brackets(state: StateInline, silent: bool) -> bool:
    r"""`\(…\)` inline and `\[…\]` displayed, within a paragraph (they may span its lines). Runs before the
    backslash-escape rule, which would otherwise turn `\(` into `(`. The closing delimiter is looked for within
    MAX_MATH_CHARS only: text full of unclosed `\(` stays linear in its length."""
    opening = state.src[state.pos : state.pos + 2]
    if opening not in (r"\(", r"\["):
        return False
    start = state.pos + 2
    end = state.src.find(_CLOSING[opening], start, start + MAX_MATH_CHARS + 2)
    if end <= start:
        return False
    if not silent:
        display = opening == r"\["
        token = state.push("math_inline_double" if display else "math_inline", "math", 0)
        token.content = state.src[start:end]
        token.markup = opening
    state.pos = end + 2
    return True


def _render_math_token(display: bool):
    def render(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        source = token.markup + token.content + _CLOSING[token.markup]
        return render_math(token.content, display=display, source=source)

    return render


def _render_math_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    rendered = render_math(token.content, display=True, source=f"$${token.content}$$")
    return rendered + "\n" if rendered.startswith("<math") else f"<p>{rendered}</p>\n"


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    alt = self.renderInlineAsText(tokens[idx].children or [], options, env).strip()
    return escapeHtml(f"[image: {alt}]" if alt else "[image]")


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", LINK_REL)  # what the sanitiser would add (nh3 link_rel)
    return self.renderToken(tokens, idx, options, env)


def _table_alignment_as_class(state: StateCore) -> None:
    """markdown-it aligns table cells with style="text-align:…"; the CSP forbids inline styles."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and (style := token.attrGet("style")):
            token.attrs.pop("style")
            token.attrSet("class", "align-" + str(style).removeprefix("text-align:"))


def _valid_link(url: str) -> bool:
    scheme = re.match(r"\s*([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    return scheme is None or scheme[1].lower() in URL_SCHEMES


_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True})
    .enable("table")
    .enable("strikethrough")
    .use(tasklists_plugin)
    .use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True, allow_labels=False)
)
_md.validateLink = _valid_link  # type: ignore[method-assign]  # the sanitiser's schemes, so it never has to drop a link
_md.inline.ruler.before("escape", "math_brackets", _math_brackets)
_md.core.ruler.push("table_alignment_as_class", _table_alignment_as_class)
_md.add_render_rule("math_inline", _render_math_token(display=False))
_md.add_render_rule("math_inline_double", _render_math_token(display=True))
_md.add_render_rule("math_block", _render_math_block)
_md.add_render_rule("image", _render_image)
_md.add_render_rule("link_open", _link_open)


def markdown_to_html(text: str | None) -> str:
    """The renderer alone, before the sanitiser (tests compare the two)."""
    return _md.render(text or "")


def sanitise(html_text: str) -> str:
    return nh3.clean(
        html_text,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        allowed_classes=_ALLOWED_CLASSES,
        set_tag_attribute_values=_FORCED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )


def render_markdown(text: str | None) -> Markup:
    """Sanitised HTML for `text`, through a per-process cache keyed by the text's hash: a response is shown to
    several annotators and again on each revisit, and the MathML conversion (the slow part) happens inside."""
    text = text or ""
    if len(text) > MAX_MARKDOWN_CHARS:
        return as_plain_text(text)
    key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    rendered = _cache.get(key)
    if rendered is None:
        rendered = Markup(sanitise(markdown_to_html(text)))
        _cache.put(key, rendered)
    return rendered


def as_plain_text(text: str) -> Markup:
    """Text over the budget: escaped, preformatted, under a notice. Escaping 2 MB takes milliseconds; parsing it as
    Markdown took tens of seconds for a big table."""
    return Markup(
        f'<p class="too-large">{TOO_LARGE_NOTICE} ({len(text):,} characters).</p>'
        f'<pre class="as-text">{html.escape(text, quote=False)}</pre>'
    )


class _RenderCache:
    """Least recently used rendered HTML, bounded by its total length (characters, about bytes for the ASCII
    that HTML mostly is) rather than by a count: one big response must not hold many megabytes per entry slot."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self._entries: OrderedDict[bytes, Markup] = OrderedDict()
        self._lock = threading.Lock()  # pages render in worker threads

    def get(self, key: bytes) -> Markup | None:
        with self._lock:
            rendered = self._entries.get(key)
            if rendered is not None:
                self._entries.move_to_end(key)
            return rendered

    def put(self, key: bytes, rendered: Markup) -> None:
        if len(rendered) > self.max_chars:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = rendered
            self.chars += len(rendered)
            while self.chars > self.max_chars:
                _, evicted = self._entries.popitem(last=False)
                self.chars -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.chars = 0


_cache = _RenderCache(RENDER_CACHE_CHARS)
