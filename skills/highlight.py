"""HTML for code sketches and version diffs, highlighted with Pygments (inline styles, no extra CSS)."""

from __future__ import annotations

import difflib

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer

from .models import Skill

STYLE = "friendly"


def code_html(source: str) -> SafeString:
    """A <div class="highlight"><pre>... block; Pygments escapes the source."""
    formatter = HtmlFormatter(style=STYLE, noclasses=True, linenos=False)
    return mark_safe(highlight(source or "", PythonLexer(), formatter))


def skill_diff(old: Skill, new: Skill) -> str:
    """Unified diff of two versions' content (text fields, then the code sketch)."""

    def lines(skill: Skill) -> list[str]:
        out = []
        for label, value in (
            ("description", skill.description),
            ("symptom", skill.symptom),
            ("when to apply", skill.when_to_apply),
            ("when not to apply", skill.when_not_to_apply),
            ("repair strategy", skill.repair_strategy),
            ("validated context", skill.validated_context),
            ("guidance", skill.guidance),
        ):
            out.append(f"## {label}")
            out.extend((value or "").splitlines())
        out.append("## code sketch")
        out.extend((skill.code_sketch or "").splitlines())
        return out

    return "\n".join(difflib.unified_diff(lines(old), lines(new), f"{old}", f"{new}", lineterm=""))


def diff_html(old: Skill, new: Skill) -> SafeString:
    diff = skill_diff(old, new)
    if not diff:
        return mark_safe("<p>No textual change.</p>")
    return mark_safe(highlight(diff, DiffLexer(), HtmlFormatter(style=STYLE, noclasses=True)))
