"""Skills as markdown files with YAML front matter, in the section layout of the published ASPIRE skills.

Layout (front matter keys beyond ``name``/``description`` are ours; files without them still import)::

    ---
    name: cube-top-face-localisation
    description: Locate a box-shaped object from its top-face points ...
    kind: localisation heuristic
    version: 2
    parent: cube-top-face-localisation@1     # export only; import links by name
    changes: what version 2 changes
    embodiment: Panda
    benchmark: robosuite
    tasks: [robosuite:Lift]
    failure_signature: {statuses: [IK_FAILED], primitives: [move_to_pose]}
    placeholders: {TOP_FACE_BAND: {default: 0.006, doc: "m"}}
    status / provenance / evidence / usage    # informational; an import ignores them
    ---

    # Title

    ## Symptom
    ## Technique          (the repair strategy in words, then the code sketch as the last python block)
    ## When to apply
    ## When NOT to apply
    ## (further sections are kept verbatim as notes)
    ## Validated context

Parsing raises SkillFormatError with the reason; fields are validated later by SkillDraft.cleaned().
"""

from __future__ import annotations

import re

import yaml

from .content import SkillDraft
from .models import Skill

SECTIONS = {
    "symptom": "symptom",
    "technique": "technique",
    "when to apply": "when_to_apply",
    "when not to apply": "when_not_to_apply",
    "validated context": "validated_context",
}
FENCE_RE = re.compile(r"^(```|~~~)")
PYTHON_LANGUAGES = ("python", "py", "python3", "")
MAX_FILE = 200_000


class SkillFormatError(ValueError):
    """A file that is not a skill in the documented layout; the message says what is wrong."""


def export_skill_markdown(skill: Skill) -> str:
    """The skill as one markdown document (front matter + sections); see the module docstring."""
    front: dict = {
        "name": skill.name,
        "description": skill.description,
        "kind": skill.get_kind_display(),
        "version": skill.version,
    }
    if skill.parent_id:
        front["parent"] = f"{skill.parent.name}@{skill.parent.version}"
    if skill.change_note:
        front["changes"] = skill.change_note
    front["status"] = str(skill.status)
    front["provenance"] = str(skill.provenance)
    for key, value in (
        ("embodiment", skill.embodiment),
        ("benchmark", skill.benchmark),
        ("tasks", list(skill.task_keys)),
        ("failure_signature", skill.trace_signals),
        ("placeholders", skill.placeholders),
    ):
        if value:
            front[key] = value
    if skill.pass_rate_after is not None:
        front["evidence"] = {
            "seeds_flipped": list(skill.seeds_flipped),
            "pass_rate_before": skill.pass_rate_before,
            "pass_rate_after": skill.pass_rate_after,
        }
    if skill.usage_count:
        front["usage"] = {"uses": skill.usage_count, "wins": skill.win_count}
    parts = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100).rstrip(),
        "---",
        "",
        f"# {skill.label}",
        "",
    ]

    def section(heading: str, text: str) -> None:
        if text:
            parts.extend([f"## {heading}", "", text.strip(), ""])

    section("Symptom", skill.symptom)
    technique = skill.repair_strategy.strip()
    if skill.code_sketch:
        technique = (technique + "\n\n" if technique else "") + f"```python\n{skill.code_sketch.rstrip()}\n```"
    section("Technique", technique)
    section("When to apply", skill.when_to_apply)
    section("When NOT to apply", skill.when_not_to_apply)
    if skill.notes:
        parts.extend([skill.notes.strip(), ""])
    section("Validated context", skill.validated_context)
    return "\n".join(parts).rstrip() + "\n"


def parse_skill_markdown(text: str, default_kind: str = "") -> SkillDraft:
    """A SkillDraft from one markdown document (not yet validated); raises SkillFormatError.

    ``default_kind`` is used when the front matter has no ``kind`` (published files have none).
    """
    if not isinstance(text, str):
        raise SkillFormatError("the file is not text")
    if len(text) > MAX_FILE:
        raise SkillFormatError(f"the file is longer than {MAX_FILE} characters")
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    front, body = _split_front_matter(text)
    for key in ("name", "description"):
        if not isinstance(front.get(key), str) or not front[key].strip():
            raise SkillFormatError(f"the front matter has no {key}")
    kind = front.get("kind") or default_kind
    if not kind:
        raise SkillFormatError("the front matter has no kind (" + ", ".join(k.label for k in Skill.Kind) + ")")
    title, sections, notes = _split_sections(body)
    technique = sections.get("technique", "")
    sketch, strategy = _split_technique(technique)
    for key in ("failure_signature", "placeholders"):
        if front.get(key) is not None and not isinstance(front[key], dict):
            raise SkillFormatError(f"{key} in the front matter must be a mapping")
    return SkillDraft(
        name=front["name"],
        description=front["description"],
        kind=str(kind),
        title=title,
        symptom=sections.get("symptom", ""),
        trace_signals=front.get("failure_signature") or {},
        when_to_apply=sections.get("when_to_apply", ""),
        when_not_to_apply=sections.get("when_not_to_apply", ""),
        repair_strategy=strategy,
        code_sketch=sketch,
        placeholders=front.get("placeholders") or {},
        notes=notes,
        embodiment=str(front.get("embodiment") or ""),
        benchmark=str(front.get("benchmark") or ""),
        task_keys=front.get("tasks") or [],
        validated_context=sections.get("validated_context", ""),
        change_note=str(front.get("changes") or ""),
    )


def _split_front_matter(text: str) -> tuple[dict, str]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise SkillFormatError("the file does not start with YAML front matter (a line '---')")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise SkillFormatError("the front matter is not closed by a line '---'") from None
    try:
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise SkillFormatError(f"the front matter is not valid YAML: {exc}") from None
    if not isinstance(front, dict):
        raise SkillFormatError("the front matter must be a YAML mapping")
    return front, "\n".join(lines[end + 1 :])


def _split_sections(body: str) -> tuple[str, dict[str, str], str]:
    """(title, {field: text} for the known sections, the other sections verbatim)."""
    title = ""
    current: str | None = None  # None: before the first "## " heading
    chunks: dict[str, list[str]] = {}
    notes: list[str] = []
    preface: list[str] = []
    in_fence = False
    for line in body.split("\n"):
        if FENCE_RE.match(line.strip()):
            in_fence = not in_fence
        if not in_fence and line.startswith("# ") and not title and current is None:
            title = line[2:].strip()
            continue
        if not in_fence and line.startswith("## "):
            heading = line[3:].strip()
            key = SECTIONS.get(heading.lower().rstrip(":"))
            if key is None:
                current = "__notes__"
                notes.append(line)
            else:
                current = key
                chunks.setdefault(key, [])
            continue
        if current is None:
            preface.append(line)
        elif current == "__notes__":
            notes.append(line)
        else:
            chunks[current].append(line)
    sections = {key: "\n".join(lines).strip() for key, lines in chunks.items()}
    kept = "\n".join(preface).strip()
    rest = "\n".join(notes).strip()
    return title, sections, "\n\n".join(p for p in (kept, rest) if p)


def _split_technique(technique: str) -> tuple[str, str]:
    """(code sketch = the last python code block, the words around it)."""
    lines = technique.split("\n")
    blocks = []  # (first line, last line, language)
    start, language = None, ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if start is None and FENCE_RE.match(stripped):
            start, language = i, stripped[3:].strip().lower()
        elif start is not None and stripped in ("```", "~~~"):
            blocks.append((start, i, language))
            start = None
    python = [b for b in blocks if b[2] in PYTHON_LANGUAGES]
    if not python:
        return "", technique.strip()
    first, last, _ = python[-1]
    sketch = "\n".join(lines[first + 1 : last]).rstrip()
    words = "\n".join(lines[:first] + lines[last + 1 :]).strip()
    return sketch, words
