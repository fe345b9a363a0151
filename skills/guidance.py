"""Reading skill files in a free layout (the published ASPIRE files): what their text states explicitly.

A file whose front matter has no ``kind`` (or says ``layout: guidance``) keeps its whole body verbatim as
the skill's *guidance*; this module reads from it only what the text says in so many words, for retrieval
and for the reviewer, and leaves everything else blank:

- **sections**: ``#``..``######`` headings, and label lines (a short line of its own ending in ":", e.g.
  "When cuRobo fails:" or "**Decision rules:**") with the list or paragraph under them. A heading's
  section runs to the next heading of the same or a higher level, or to a sub-heading that is itself a
  section of another field. Section titles are compared without numbering, emphasis or a final ":";
- **fields** from section titles (SECTION_FIELDS): "When to use/apply", "Use when", "Trigger(s)" ->
  when to apply; "When NOT to use/apply" -> when not to apply; "Symptom(s)", "Failure signature(s)",
  "Failure modes" -> symptom; "Repair", "Technique", "Strategy", "Fix strategy" -> repair strategy;
  "Validated context" -> validated context. Several sections of one field are joined. A description
  that starts "Use when/for/if …" is the when-to-apply text when no section says it;
- **code sketch**: the last python block of a "Technique" section (our own layout's rule); otherwise the
  first python block whose innermost heading, or a label line above it, calls itself a template
  ("Standard Pick-and-Place Template", "Example template (copy-adapt):"); otherwise none. Only blocks
  fenced as python/py/python3 count: bash, text or unlabelled blocks are never taken for code (so they
  never meet the Python policy check), and neither is prose;
- **kind** (``infer_kind``): from the skill's name and title only, the first rule of KIND_RULES whose word
  occurs in them; none -> blank, for the reviewer to set.

Names of files without front matter come from their path (``name_from_path``), their description from
the title and the paragraph under it (``description_from_body``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .content import MAX_TEXT
from .models import Skill

FENCE_OPEN_RE = re.compile(r"^\s*(`{3,}|~{3,})\s*([^`\s]*)")
HEADING_RE = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM_RE = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
LABEL_RE = re.compile(r"^(?:\*\*|__)?([^\s*_|>#`-][^|]{0,98}?)(?::(?:\*\*|__)?|(?:\*\*|__):)\s*$")
NUMBERING_RE = re.compile(r"^(§\s*)?\d+(\.\d+)*[.)]?\s+")
PYTHON_FENCES = ("python", "py", "python3")
DESCRIPTION_CHARS = 300

#: (field, pattern on the normalised section title). The first match names the section's field.
SECTION_FIELDS = (
    ("when_not_to_apply", re.compile(r"^(when not to (use|apply)|(do not|don't) use)\b")),
    ("when_to_apply", re.compile(r"^(when to (use|apply)|use (it |this )?when|triggers?)\b")),
    ("symptom", re.compile(r"^((typical |common )?(symptoms?|failure signatures?|failure modes?))\b")),
    ("repair_strategy", re.compile(r"^(repair|technique|strategy|fix strategy)\b")),
    ("validated_context", re.compile(r"^validated context\b")),
)
USE_WHEN_RE = re.compile(r"^\s*use (it |this( skill)? )?(when|for|if|before|after|on)\b", re.IGNORECASE)
TEMPLATE_RE = re.compile(r"\btemplates?\b")

#: kind <- words in the skill's name or title, tried in this order (the first that occurs wins).
KIND_RULES = (
    (Skill.Kind.RECOVERY, ("recover", "retry", "retries", "retreat")),
    (Skill.Kind.DEBUGGING_WORKFLOW, ("debug", "triage", "diagnos")),
    (Skill.Kind.PERCEPTION_PROMPT, ("perception prompt", "prompt fallback", "prompt registry")),
    (Skill.Kind.LOCALISATION, ("localis", "localiz", "locate", "perception")),
    (Skill.Kind.GRASP_CONSTRAINT, ("grasp", "pickup", "pick up")),
    (Skill.Kind.MOTION_PRIMITIVE, ("transport", "motion", "planner", "waypoint", "trajector")),
)


@dataclass
class Section:
    """A heading (level 1-6) or a label line (level 0) and the lines it covers (end exclusive)."""

    title: str
    level: int
    line: int
    end: int
    field: str = ""


@dataclass
class CodeBlock:
    language: str
    start: int  # the opening fence's line
    end: int  # the closing fence's line (or the last line when the fence is never closed)


@dataclass
class Outline:
    """A markdown body cut into lines, sections and fenced code blocks."""

    lines: list[str]
    sections: list[Section] = field(default_factory=list)
    blocks: list[CodeBlock] = field(default_factory=list)
    in_code: set[int] = field(default_factory=set)

    def text(self, start: int, end: int, skip: tuple[CodeBlock, ...] = ()) -> str:
        dropped = {i for block in skip for i in range(block.start, block.end + 1)}
        kept = [line for i, line in enumerate(self.lines[start:end], start) if i not in dropped]
        text = "\n".join(kept).strip("\n").rstrip()
        return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text) if dropped else text  # no gap where code was

    def context(self, line: int) -> list[Section]:
        """The innermost heading around ``line`` and the label lines whose text holds it."""
        around = [s for s in self.sections if s.line < line < s.end]
        headings = [s for s in around if s.level]
        return [s for s in around if not s.level] + headings[-1:]


def normalise_title(title: str) -> str:
    """A heading or label as the field rules read it: no emphasis, code marks, numbering or final ':'."""
    text = re.sub(r"[*_`]+", "", title).strip()
    text = NUMBERING_RE.sub("", text).rstrip(":").strip()
    return re.sub(r"\s+", " ", text).lower()


def outline(body: str) -> Outline:
    """Sections and code blocks of a markdown body (fenced code is never read as headings or labels)."""
    lines = body.split("\n")
    out = Outline(lines)
    fence: tuple[str, int] | None = None
    headings: list[Section] = []
    for i, line in enumerate(lines):
        if fence is not None:
            out.in_code.add(i)
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= fence[1]:
                out.blocks[-1].end = i
                fence = None
            continue
        opening = FENCE_OPEN_RE.match(line)
        if opening:
            marks = opening.group(1)
            fence = (marks[0], len(marks))
            out.blocks.append(CodeBlock(opening.group(2).lower(), i, len(lines) - 1))
            out.in_code.add(i)
            continue
        heading = HEADING_RE.match(line)
        if heading:
            headings.append(Section(heading.group(2), len(heading.group(1)), i, len(lines)))
    for index, section in enumerate(headings):
        section.field = _field_of(section.title)
        for later in headings[index + 1 :]:
            if later.level <= section.level or (later.field and later.field != section.field):
                section.end = later.line
                break
    out.sections = headings + _labels(lines, out.in_code, [h.line for h in headings])
    out.sections.sort(key=lambda s: s.line)
    return out


def _field_of(title: str) -> str:
    text = normalise_title(title)
    return next((name for name, pattern in SECTION_FIELDS if pattern.match(text)), "")


def _labels(lines: list[str], in_code: set[int], heading_lines: list[int]) -> list[Section]:
    """Label lines ("Flow:", "**Decision rules:**") after a blank line or a heading, with the list or
    paragraph under them."""
    starts = set(heading_lines)
    candidates = []
    for i, line in enumerate(lines):
        if i in in_code or i in starts or LIST_ITEM_RE.match(line) or line.startswith((" ", "\t")):
            continue
        previous_blank = i == 0 or not lines[i - 1].strip() or (i - 1) in starts
        match = LABEL_RE.match(line.strip())
        if match and previous_blank:
            candidates.append((i, match.group(1)))
    stops = starts | {i for i, _ in candidates}
    labels = []
    for i, title in candidates:
        end = _label_end(lines, i, stops, in_code)
        labels.append(Section(title, 0, i, end, _field_of(title)))
    return labels


def _label_end(lines: list[str], label: int, stops: set[int], in_code: set[int]) -> int:
    """Where a label's list or paragraph ends: at a heading or label, or at the first paragraph after a
    blank line that is not part of the list."""
    seen_content = False
    is_list = False
    blank_before = False
    for i in range(label + 1, len(lines)):
        if i in stops:
            return i
        line = lines[i]
        if not line.strip():
            blank_before = seen_content
            continue
        if i in in_code or line.startswith((" ", "\t")) or LIST_ITEM_RE.match(line):
            if not seen_content:
                is_list = bool(LIST_ITEM_RE.match(line))
            elif blank_before and not is_list and i not in in_code:
                return _back_to_content(lines, i)
            seen_content = True
            blank_before = False
            continue
        if seen_content and (blank_before or is_list):
            return _back_to_content(lines, i)
        seen_content = True
        blank_before = False
    return len(lines)


def _back_to_content(lines: list[str], i: int) -> int:
    while i > 0 and not lines[i - 1].strip():
        i -= 1
    return i


# -- what the text states ------------------------------------------------------------------------------
def read_guidance(body: str, description: str = "") -> dict[str, str]:
    """The fields a free-layout body states explicitly: title, symptom, when_to_apply,
    when_not_to_apply, repair_strategy, code_sketch, validated_context (blank where it says nothing)."""
    doc = outline(body)
    sketch_block, sketch_section = _sketch(doc)
    fields: dict[str, list[str]] = {}
    for section in doc.sections:
        if not section.field or any(section.line in range(s.line + 1, s.end) for s in _same_field(doc, section)):
            continue
        skip = (sketch_block,) if sketch_block is not None and section is sketch_section else ()
        text = doc.text(section.line + 1, section.end, skip)
        if text:
            fields.setdefault(section.field, []).append(text)
    out = {name: "\n\n".join(parts) for name, parts in fields.items()}
    out = {name: text if len(text) <= MAX_TEXT else "" for name, text in out.items()}  # guidance keeps it
    if not out.get("when_to_apply") and USE_WHEN_RE.match(description or ""):
        out["when_to_apply"] = description.strip()
    out["code_sketch"] = doc.text(sketch_block.start + 1, sketch_block.end) if sketch_block is not None else ""
    out["title"] = title_of(doc)
    for name in ("symptom", "when_to_apply", "when_not_to_apply", "repair_strategy", "validated_context"):
        out.setdefault(name, "")
    return out


def _same_field(doc: Outline, section: Section) -> list[Section]:
    """Sections of the same field that enclose ``section`` (their text holds it already)."""
    return [s for s in doc.sections if s is not section and s.field == section.field and s.level]


def _sketch(doc: Outline) -> tuple[CodeBlock | None, Section | None]:
    python = [b for b in doc.blocks if b.language in PYTHON_FENCES and b.end > b.start]
    for section in doc.sections:
        if normalise_title(section.title).startswith("technique"):
            inside = [b for b in python if section.line < b.start < section.end]
            if inside:
                return inside[-1], section
    for block in python:
        if any(TEMPLATE_RE.search(normalise_title(s.title)) for s in doc.context(block.start)):
            return block, None
    return None, None


def title_of(doc: Outline) -> str:
    """The first level-1 heading's text, if the body has one."""
    first = next((s for s in doc.sections if s.level == 1), None)
    return first.title.strip()[:200] if first is not None else ""


def infer_kind(name: str, title: str) -> str:
    """The kind the name or title states (KIND_RULES, first match), else blank."""
    words = " " + re.sub(r"[^a-z0-9]+", " ", f"{name} {title}".lower())
    for kind, stems in KIND_RULES:
        if any(f" {stem}" in words for stem in stems):
            return kind.value
    return ""


def description_from_body(body: str) -> str:
    """A description for a file without front matter: "<title>: <intro>", where the title is the first
    level-1 heading and the intro the first paragraph of prose before the next heading (block quotes
    unwrapped; lists, tables, code and label lines are not prose); either alone when the other is missing,
    else the first heading of any level; '' when the body has none of these. At most DESCRIPTION_CHARS."""
    doc = outline(body)
    title = title_of(doc)
    headings = [s for s in doc.sections if s.level]
    start = headings[0].line + 1 if headings and headings[0].level == 1 else 0
    stop = next((s.line for s in headings if s.line >= start), len(doc.lines))
    paragraph: list[str] = []
    for i in range(start, stop):
        text = doc.lines[i].strip()
        if text.startswith(">"):
            text = text.lstrip("> ").strip()
        prose = (
            text
            and i not in doc.in_code
            and not LIST_ITEM_RE.match(text)
            and not text.startswith("|")
            and not re.fullmatch(r"[-*_ ]{3,}", text)
        )
        if not prose:
            if paragraph:
                if paragraph[-1].endswith(":"):  # a label introducing a list: not a description
                    paragraph = []
                    continue
                break
            continue
        paragraph.append(text)
    intro = " ".join(paragraph) if paragraph and not paragraph[-1].endswith(":") else ""
    words = ": ".join(p for p in (_plain(title), intro) if p)
    if not words and headings:
        words = _plain(headings[0].title)
    if len(words) > DESCRIPTION_CHARS:
        words = words[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return words


def _plain(title: str) -> str:
    return re.sub(r"[*_`]+", "", title).strip()


def name_from_path(path: str) -> str:
    """A skill name for a file without one: ``<skill>/SKILL.md`` -> the folder's name,
    ``<skill>/references/<file>.md`` -> ``<skill>-<file>``, any other ``<file>.md`` -> its stem."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts:
        return ""
    stem = PurePosixPath(parts[-1]).stem
    folders = [p for p in parts[:-1] if p not in ("/", ".", "..")]
    if stem.lower() == "skill" and folders:
        return folders[-1]
    if len(folders) >= 2 and folders[-1].lower() == "references":
        return f"{folders[-2]}-{stem}"
    return stem
