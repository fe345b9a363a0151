"""Markdown of imported skill files as safe HTML: ``markdown_html``.

Imported files are untrusted. Two layers, each enough alone:

1. markdown-it-py (CommonMark + tables) with raw HTML off, so ``<script>`` in a file is shown as text, and
   its own link check, which refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` URLs;
   images are off too (a page loads nothing from another host);
2. nh3 (the ammonia sanitiser) keeps only the tags markdown produces, links with http(s), mailto or
   relative targets (``rel="nofollow noopener noreferrer"``) and text-align on table cells; tables and
   code blocks get the site's own classes.

Headings move down two levels (``#`` -> ``<h3>``) so a file's own title sits under the page's.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

HEADING_SHIFT = 2
TAGS = frozenset(
    {"p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a"}
    | {"h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td"}
)
ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    return md


_MD = _parser()


def markdown_html(text: str) -> SafeString:
    """``text`` (markdown) as sanitised HTML, safe to put on a page as it is."""
    tokens = _MD.parse(text or "")
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + HEADING_SHIFT)}"
    html = _MD.renderer.render(tokens, _MD.options, {})
    clean = nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer",
        filter_style_properties={"text-align"},
        set_tag_attribute_values={"table": {"class": "grid"}, "pre": {"class": "code"}},  # the site's styles
        strip_comments=True,
    )
    return mark_safe(clean)  # sanitised by nh3 just above
