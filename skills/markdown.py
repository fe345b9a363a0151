"""Skills as markdown files with YAML front matter, in the section layout of the published ASPIRE skills,
or in any free layout (the published files as they are).

Two layouts, told apart by the front matter (``layout`` when given, else: ``kind`` present -> sections):

**sections** (ours; export writes it for skills without guidance)::

    ---
    name: cube-top-face-localisation
    description: "Locate a box-shaped object from its top-face points ..."
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

**guidance** (the published files: front matter with only ``name`` and ``description``, or none at all):
the whole body is kept verbatim as the skill's ``guidance``; skills.guidance reads from it only what it
states (title, when to apply, symptom, repair, code sketch, kind) and leaves the rest blank, the kind
included, for a reviewer. Export writes such a skill back as ``layout: guidance`` with the guidance as the
body, and front-matter keys only for fields a person changed from what the body states. Without front
matter the name comes from the file's path and the description from its first paragraph. A front
matter that is not valid YAML (published files hold unquoted ": " in descriptions) is read as plain
``key: value`` lines.

Export always writes ``name`` then ``description`` first, each on one line, as the published coordinators
read them. Parsing raises SkillFormatError with the reason; fields are validated later by
SkillDraft.cleaned().
"""

from __future__ import annotations

import re

import yaml

from .content import MAX_GUIDANCE, SkillDraft
from .guidance import description_from_body, infer_kind, name_from_path, read_guidance
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
MAX_FILE = MAX_GUIDANCE
LAYOUTS = ("sections", "guidance")
#: Fields of a guidance-layout skill that front matter may set (export writes those a person changed).
GUIDANCE_OVERRIDES = (
    "title",
    "symptom",
    "when_to_apply",
    "when_not_to_apply",
    "repair_strategy",
    "code_sketch",
    "notes",
    "validated_context",
)
FRONT_LINE_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?:\s+(.*))?$")


class SkillFormatError(ValueError):
    """A file that is not a skill in either layout; the message says what is wrong."""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (PyYAML falls back to quotes where a block cannot hold them)."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def _dump(mapping: dict, **kwargs) -> str:
    # An unbounded width: a long description stays on its one line.
    return yaml.dump(mapping, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=2**31, **kwargs).rstrip()


def export_skill_markdown(skill: Skill) -> str:
    """The skill as one markdown document (front matter + body); see the module docstring."""
    # name and description first, each on one line: the description double-quoted (as the published
    # real-robot skills), so even a line break in it is written as an escape, never a second line.
    description = yaml.safe_dump(skill.description, default_style='"', allow_unicode=True, width=2**31)
    head = [_dump({"name": skill.name}), "description: " + description.strip()]
    front: dict = {}
    if skill.guidance:
        front["layout"] = "guidance"
        stated = read_guidance(skill.guidance, skill.description)
        if skill.kind or infer_kind(skill.name, stated["title"]):
            front["kind"] = skill.get_kind_display() if skill.kind else ""
        # Only what a person changed after the import: the rest is read again from the guidance.
        front.update(
            {k: getattr(skill, k) for k in GUIDANCE_OVERRIDES if getattr(skill, k).strip() != stated.get(k, "").strip()}
        )
    else:
        front["kind"] = skill.get_kind_display()
    front["version"] = skill.version
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
    parts = ["---", *head, _dump(front), "---", ""]
    if skill.guidance:
        return "\n".join(parts) + "\n" + skill.guidance.rstrip() + "\n"
    parts.extend([f"# {skill.label}", ""])

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


def parse_skill_markdown(text: str, default_kind: str = "", path: str = "") -> SkillDraft:
    """A SkillDraft from one markdown document (not yet validated); raises SkillFormatError.

    ``default_kind`` is used when the front matter has no ``kind`` (published files have none; without
    it the kind is inferred from the name and title, or left blank). ``path`` (the file's path, folders
    included) names a file that has no front matter.
    """
    if not isinstance(text, str):
        raise SkillFormatError("the file is not text")
    if len(text) > MAX_FILE:
        raise SkillFormatError(f"the file is longer than {MAX_FILE} characters")
    if "\x00" in text:
        raise SkillFormatError("the file holds NUL characters: a binary file, not markdown")
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.strip():
        raise SkillFormatError("the file is empty")
    front, body = _split_front_matter(text)
    layout = front.get("layout") or ("sections" if "kind" in front else "guidance")
    if layout not in LAYOUTS:
        raise SkillFormatError(f"layout in the front matter must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    for key in ("failure_signature", "placeholders"):
        if front.get(key) is not None and not isinstance(front[key], dict):
            raise SkillFormatError(f"{key} in the front matter must be a mapping")
    common = {
        "trace_signals": front.get("failure_signature") or {},
        "placeholders": front.get("placeholders") or {},
        "embodiment": str(front.get("embodiment") or ""),
        "benchmark": str(front.get("benchmark") or ""),
        "task_keys": front.get("tasks") or [],
        "change_note": str(front.get("changes") or ""),
    }
    if layout == "guidance":
        return _guidance_draft(front, body, default_kind, path, common)
    for key in ("name", "description"):
        if not isinstance(front.get(key), str) or not front[key].strip():
            raise SkillFormatError(f"the front matter has no {key}")
    kind = front.get("kind") or default_kind
    if not kind:
        raise SkillFormatError("the front matter has no kind (" + ", ".join(k.label for k in Skill.Kind) + ")")
    title, sections, notes = _split_sections(body)
    technique = sections.get("technique", "")
    sketch, strategy = _split_technique(technique)
    return SkillDraft(
        name=front["name"],
        description=front["description"],
        kind=str(kind),
        title=title,
        symptom=sections.get("symptom", ""),
        when_to_apply=sections.get("when_to_apply", ""),
        when_not_to_apply=sections.get("when_not_to_apply", ""),
        repair_strategy=strategy,
        code_sketch=sketch,
        notes=notes,
        validated_context=sections.get("validated_context", ""),
        **common,
    )


def _guidance_draft(front: dict, body: str, default_kind: str, path: str, common: dict) -> SkillDraft:
    """The body verbatim as guidance, plus what it states (skills.guidance); see the module docstring."""
    name = _text(front, "name") or name_from_path(path)
    if not name:
        raise SkillFormatError(
            "the front matter has no name" if front else "the file has no front matter and no file name to name it"
        )
    description = _text(front, "description") or description_from_body(body)
    if not description:
        raise SkillFormatError("the file has no description: no front matter description, heading or paragraph")
    stated = read_guidance(body, description)
    for key in GUIDANCE_OVERRIDES:
        if key in front:
            stated[key] = _text(front, key)
    if "kind" in front:
        kind = _text(front, "kind")
    else:
        kind = default_kind or infer_kind(name, stated["title"])
    return SkillDraft(
        name=name,
        description=description,
        kind=kind,
        title=stated["title"],
        symptom=stated["symptom"],
        when_to_apply=stated["when_to_apply"],
        when_not_to_apply=stated["when_not_to_apply"],
        repair_strategy=stated["repair_strategy"],
        code_sketch=stated["code_sketch"],
        notes=stated.get("notes", ""),
        validated_context=stated["validated_context"],
        guidance=body,
        **common,
    )


def _text(front: dict, key: str) -> str:
    value = front.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise SkillFormatError(f"{key} in the front matter must be text")
    return str(value).strip()


def _split_front_matter(text: str) -> tuple[dict, str]:
    """(front matter, body); ({}, text) when the file has none."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise SkillFormatError("the front matter is not closed by a line '---'") from None
    block = lines[1:end]
    try:
        front = yaml.safe_load("\n".join(block)) or {}
    except yaml.YAMLError as exc:
        front = _front_lines(block, exc)
    else:
        if not isinstance(front, dict):
            raise SkillFormatError("the front matter must be a YAML mapping")
        # YAML reads `description: yes` or `name: 2024` as a boolean or a number: take the words as written.
        loose = None
        for key in ("name", "description"):
            if key in front and not isinstance(front[key], str):
                loose = loose if loose is not None else _front_lines(block, None, strict=False)
                front[key] = loose.get(key, front[key])
    return front, "\n".join(lines[end + 1 :])


def _front_lines(block: list[str], error: yaml.YAMLError | None, strict: bool = True) -> dict:
    """The tolerant reading: one ``key: value`` per line, quotes around a value removed. Published
    descriptions hold an unquoted ": " that strict YAML refuses."""
    front: dict = {}
    for number, line in enumerate(block, 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = FRONT_LINE_RE.match(line)
        if match is None:
            if not strict:
                continue
            raise SkillFormatError(
                f"the front matter is not valid YAML ({_first_line(error)}) nor plain 'key: value' lines "
                f"(line {number}: {line.strip()[:80]!r})"
            )
        front[match.group(1)] = _unquote((match.group(2) or "").strip())
    return front


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            loaded = None
        return loaded if isinstance(loaded, str) else value[1:-1]
    return value


def _first_line(error: yaml.YAMLError | None) -> str:
    return str(error).splitlines()[0] if error is not None else "not YAML"


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
