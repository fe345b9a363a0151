"""Code sketches and their placeholders.

A skill's code sketch is robot-API Python in which every tunable constant is a placeholder written
``{{NAME}}`` (NAME in UPPER_CASE), standing for one whole Python literal (a number, a string, a
boolean, a short list of numbers or of strings), never for part of a string literal::

    APPROACH = {{APPROACH_HEIGHT}}
    hits = segment_text_prompt(rgb, {{OBJECT_PROMPT}})

The skill declares each placeholder with a default and what it means::

    {"APPROACH_HEIGHT": {"default": 0.10, "doc": "pre-grasp height above the grasp point, m"},
     "OBJECT_PROMPT": {"default": "red cube", "doc": "text prompt for the object"}}

``fill_sketch`` turns a sketch into runnable Python (defaults overridden by the values an agent
chooses); ``fill_for_program`` fills it for one program (the program's constants of the same names
first), as the offline agent applies a skill; ``declare_from_constants`` declares the placeholders a
sketch took from a program; ``sketch_as_python`` replaces each placeholder by its bare NAME so the
sketch can be parsed and checked without choosing values. Plain Python, no Django: the skills app
(admission's policy check, drafts) and the agents use the same functions.
"""

from __future__ import annotations

import math
import re

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
MAX_LIST = 16


class SketchError(ValueError):
    """A malformed placeholder declaration or fill value; the message names the placeholder."""


def placeholder(name: str) -> str:
    """How a sketch writes the placeholder NAME: ``{{NAME}}``."""
    return "{{" + name + "}}"


def placeholder_names(sketch: str) -> list[str]:
    """Placeholder names in order of first use."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER_RE.finditer(sketch or ""):
        seen.setdefault(match.group(1), None)
    return list(seen)


def _check_value(name: str, value) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise SketchError(f"placeholder {name}: the value must be finite")
        return
    if isinstance(value, str):
        if len(value) > 500:
            raise SketchError(f"placeholder {name}: a string value is at most 500 characters")
        return
    if isinstance(value, (list, tuple)):
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        strings = all(isinstance(v, str) for v in value)
        if len(value) > MAX_LIST or not (numbers or strings):
            raise SketchError(f"placeholder {name}: a list value holds at most {MAX_LIST} numbers, or strings")
        for v in value:
            _check_value(name, v)
        return
    raise SketchError(f"placeholder {name}: values are numbers, strings, booleans or short lists of numbers or strings")


def normalise_placeholders(raw) -> dict:
    """Validate placeholder declarations; returns ``{NAME: {"default": value, "doc": str}}``.

    A bare value is shorthand for ``{"default": value}``. Raises SketchError.
    """
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise SketchError("placeholders must be a mapping of NAME to {default, doc}")
    out = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SketchError(f"placeholder name {name!r} must be UPPER_CASE (letters, digits, underscores)")
        if not isinstance(spec, dict):
            spec = {"default": spec}
        unknown = set(spec) - {"default", "doc"}
        if unknown:
            raise SketchError(f"placeholder {name}: unknown keys {sorted(unknown)} (use default and doc)")
        if "default" not in spec:
            raise SketchError(f"placeholder {name} has no default")
        default = list(spec["default"]) if isinstance(spec["default"], tuple) else spec["default"]
        _check_value(name, default)
        doc = spec.get("doc") or ""
        if not isinstance(doc, str):
            raise SketchError(f"placeholder {name}: doc must be a string")
        out[name] = {"default": default, "doc": doc.strip()}
    return out


def placeholder_problems(sketch: str, placeholders: dict) -> list[str]:
    """Mismatches between a sketch and its declarations: bad names, undeclared or unused ones."""
    problems = []
    used = placeholder_names(sketch)
    for name in used:
        if not NAME_RE.match(name):
            problems.append(f"placeholder {placeholder(name)} must be UPPER_CASE")
        elif name not in placeholders:
            problems.append(
                f"placeholder {placeholder(name)} is used but not declared (declare a default and what it means)"
            )
    for name in placeholders:
        if name not in used:
            problems.append(f"placeholder {name} is declared but the sketch never uses {placeholder(name)}")
    return problems


def sketch_as_python(sketch: str) -> str:
    """The sketch with each ``{{NAME}}`` replaced by the bare name NAME (for parsing and checks)."""
    return PLACEHOLDER_RE.sub(lambda m: m.group(1), sketch or "")


def fill_sketch(sketch: str, placeholders: dict, values: dict | None = None) -> str:
    """Runnable Python: each placeholder replaced by the literal of its value.

    ``values`` override the declared defaults. Raises SketchError for an undeclared placeholder, an
    unknown value name or a value of the wrong type.
    """
    values = dict(values or {})
    unknown = set(values) - set(placeholders)
    if unknown:
        raise SketchError(f"no placeholders named {sorted(unknown)} in this sketch")
    chosen = {}
    for name, spec in placeholders.items():
        value = values.get(name, spec["default"])
        value = list(value) if isinstance(value, tuple) else value
        _check_value(name, value)
        chosen[name] = value

    def literal(match):
        name = match.group(1)
        if name not in chosen:
            raise SketchError(f"placeholder {placeholder(name)} is not declared")
        return repr(chosen[name])

    return PLACEHOLDER_RE.sub(literal, sketch or "")


def declare_from_constants(sketch: str, placeholders: dict, constants: dict, doc: str) -> dict:
    """``placeholders`` plus a declaration for each placeholder the sketch uses undeclared that
    ``constants`` (a program's module-level constants) define: the program's value is its default."""
    declared = dict(placeholders or {})
    for name in placeholder_names(sketch):
        if name not in declared and name in constants:
            declared[name] = {"default": constants[name], "doc": doc}
    return declared


def fill_for_program(sketch: str, placeholders: dict, constants: dict) -> str:
    """Runnable Python for one program: a placeholder the program defines as a constant takes the
    program's value (an applied skill keeps the program's tuning), any other its declared default.
    Raises SketchError for a placeholder that is neither declared nor a constant of the program, or a
    malformed declaration or value."""
    declared = declare_from_constants(sketch, normalise_placeholders(placeholders), constants, "")
    return fill_sketch(sketch, declared, {name: constants[name] for name in declared if name in constants})
