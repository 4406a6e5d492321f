"""Markdown to HTML for untrusted text (model output, prompts, guidelines).

Two layers: markdown-it with raw HTML disabled escapes any HTML in the source, and nh3 (Ammonia)
then keeps only a safelist of tags and URL schemes, so `javascript:` links and event handlers
cannot survive even if the renderer had a bug.
"""

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table").enable("strikethrough")

_ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
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
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}  # no style: the CSP forbids it


def render_markdown(text: str | None) -> Markup:
    html = _md.render(text or "")
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)


@lru_cache(maxsize=256)
def render_markdown_cached(text: str | None) -> Markup:
    """For text shown on every page view that rarely changes (a project's guidelines): rendered once per process."""
    return render_markdown(text)
