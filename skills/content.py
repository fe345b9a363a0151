"""A skill's content before it is a row: ``SkillDraft`` (the fields of DESIGN section 5), the one place
they are checked (``SkillDraft.cleaned()``), ``SkillInputError`` naming the field that breaks a rule,
and ``parse_kind``.

Agents (through the coordinator), markdown imports, the seed library and the admin all describe a skill
with a ``SkillDraft``; the failure signature and placeholders are checked by worker.library.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace

from django.utils.text import slugify

from worker.library.signatures import SignalsError, normalise_signature
from worker.library.sketch import SketchError, normalise_placeholders

from .models import Skill

TASK_KEY_RE = re.compile(r"^[a-z0-9_]+:[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)?$")  # LIBERO keys hold "suite/task"
MAX_TEXT = 20_000
MAX_GUIDANCE = 200_000  # a whole imported file's body (the largest published skill file is about 30 kB)


class SkillInputError(ValueError):
    """A skill cannot be created from the given input; ``field`` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field

    def __str__(self):
        return f"{self.field}: {self.args[0]}"


def parse_kind(value: str, allow_blank: bool = False) -> str:
    """A Kind value from its value or label ("grasp_constraint" or "grasp constraint"); raises SkillInputError.

    ``allow_blank``: a blank value stays blank (an imported proposal whose file does not say its kind).
    """
    text = str(value or "").strip().lower()
    if not text and allow_blank:
        return ""
    for kind in Skill.Kind:
        if text in (kind.value, kind.label.lower(), kind.label.lower().replace(" ", "_"), kind.value.replace("_", " ")):
            return kind.value
    known = ", ".join(k.label for k in Skill.Kind)
    raise SkillInputError("kind", f"unknown kind {value!r}; one of: {known}")


@dataclass
class SkillDraft:
    """The content of a skill (DESIGN section 5). Shapes: see the Skill model's fields."""

    name: str
    description: str
    kind: str
    title: str = ""
    symptom: str = ""
    trace_signals: dict = field(default_factory=dict)
    when_to_apply: str = ""
    when_not_to_apply: str = ""
    repair_strategy: str = ""
    code_sketch: str = ""
    placeholders: dict = field(default_factory=dict)
    notes: str = ""
    embodiment: str = ""
    benchmark: str = ""
    task_keys: list = field(default_factory=list)
    validated_context: str = ""
    change_note: str = ""
    guidance: str = ""

    TEXT_FIELDS = (
        "title",
        "description",
        "symptom",
        "when_to_apply",
        "when_not_to_apply",
        "repair_strategy",
        "notes",
        "validated_context",
        "change_note",
    )

    @classmethod
    def from_skill(cls, skill: Skill) -> "SkillDraft":
        return cls(**{f.name: getattr(skill, f.name) for f in fields(cls)})

    def as_fields(self) -> dict:
        return asdict(self)

    def cleaned(self, allow_blank_kind: bool = False) -> "SkillDraft":
        """A validated, normalised copy; raises SkillInputError naming the field and the rule.

        ``allow_blank_kind``: the kind may stay blank (imported proposals; a reviewer sets it before
        approval, see skills.lifecycle.approve_skill). ``guidance`` (an imported file's body) is kept
        verbatim but for leading blank lines and trailing whitespace, and counts as saying what to do.
        """
        # Published names may be paths ("robosuite/fix-loop/skills/grasp"): each separator becomes a hyphen.
        name = slugify(re.sub(r"[/\\]+", "-", str(self.name or "")))[:100].strip("-")
        if not name:
            raise SkillInputError("name", "a skill needs a name (letters, digits and hyphens)")
        out = replace(self, name=name)
        for key in self.TEXT_FIELDS:
            value = getattr(self, key)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise SkillInputError(key, "must be text")
            if len(value) > MAX_TEXT:
                raise SkillInputError(key, f"is longer than {MAX_TEXT} characters")
            setattr(out, key, value.strip())
        if not out.description:
            raise SkillInputError("description", "a skill needs a description")
        if len(out.title) > 200:
            raise SkillInputError("title", "is longer than 200 characters")
        out.kind = parse_kind(self.kind, allow_blank=allow_blank_kind)
        if not isinstance(self.code_sketch, str) or len(self.code_sketch) > MAX_TEXT:
            raise SkillInputError("code_sketch", f"must be text of at most {MAX_TEXT} characters")
        out.code_sketch = self.code_sketch.strip("\n").rstrip()
        guidance = self.guidance or ""
        if not isinstance(guidance, str) or len(guidance) > MAX_GUIDANCE:
            raise SkillInputError("guidance", f"must be text of at most {MAX_GUIDANCE} characters")
        out.guidance = _strip_blank_lines(guidance)
        if not out.code_sketch and not out.repair_strategy and not out.guidance:
            raise SkillInputError(
                "repair_strategy", "a skill must say what to do: a repair strategy, a code sketch or guidance"
            )
        try:
            out.placeholders = normalise_placeholders(self.placeholders)
        except SketchError as exc:
            raise SkillInputError("placeholders", str(exc)) from None
        try:
            out.trace_signals = normalise_signature(self.trace_signals)
        except SignalsError as exc:
            raise SkillInputError("trace_signals", str(exc)) from None
        for key in ("embodiment", "benchmark"):
            value = str(getattr(self, key) or "").strip()
            if len(value) > 50:
                raise SkillInputError(key, "is longer than 50 characters")
            setattr(out, key, value)
        keys = self.task_keys or []
        if isinstance(keys, str):
            keys = [keys]
        well_formed = isinstance(keys, (list, tuple)) and all(
            isinstance(k, str) and TASK_KEY_RE.match(k.strip()) for k in keys
        )
        if not well_formed:
            raise SkillInputError("task_keys", 'tasks are "benchmark:task" keys, e.g. robosuite:Lift')
        out.task_keys = list(dict.fromkeys(k.strip() for k in keys))
        return out


def _strip_blank_lines(text: str) -> str:
    """``text`` without its leading blank lines and trailing whitespace; the rest is untouched."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()
