"""Robot programs as templates: their tunable constants, swappable helper functions and the reference
program that fits an instruction.

A template's knobs are its module-level constants (``APPROACH_HEIGHT = 0.10``, ``OBJECT_PROMPT =
"basket"``); its replaceable units are its top-level functions. Both are found and rewritten with the
standard library's ``ast`` and line positions, so comments and layout survive.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from worker.library.sketch import (
    SketchError,
    fill_for_program,
    fill_sketch,
    normalise_placeholders,
    placeholder,
    sketch_as_python,
)
from worker.sandbox.policy import check_source

PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"


def constants(code: str) -> dict:
    """{NAME: value} for module-level UPPER_CASE assignments of a number, string or bool."""
    out = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, (int, float, str, bool))
            if name.isupper() and literal:
                out[name] = node.value.value
    return out


def set_constants(code: str, values: dict) -> str:
    """The program with the given module-level constants re-assigned (their trailing comments kept).
    Raises KeyError for a name the program does not define."""
    lines = code.split("\n")
    found = set()
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in values:
                line = lines[node.lineno - 1]
                comment = line[line.index("#") :] if "#" in line[node.value.end_col_offset :] else ""
                value = values[name]
                literal = repr(round(value, 4)) if isinstance(value, float) else repr(value)
                lines[node.lineno - 1] = f"{name} = {literal}" + (f"  {comment}" if comment else "")
                found.add(name)
    missing = set(values) - found
    if missing:
        raise KeyError(f"the program defines no constant {sorted(missing)}")
    return "\n".join(lines)


def functions(code: str) -> dict[str, tuple[int, int]]:
    """{name: (first line, last line)} of top-level function definitions, 1-based, decorators included."""
    out = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = (first, node.end_lineno)
    return out


def function_source(code: str, name: str) -> str:
    """The source of the top-level function ``name`` of ``code`` (decorators included); raises KeyError
    when there is none."""
    first, last = functions(code)[name]
    return "\n".join(code.split("\n")[first - 1 : last])


def replace_function(code: str, new_source: str) -> str:
    """The program with the top-level function that ``new_source`` defines swapped for it.
    Raises KeyError when the program has no function of that name, ValueError when ``new_source``
    does not define exactly one function."""
    defined = [n for n in ast.parse(new_source).body if isinstance(n, ast.FunctionDef)]
    if len(defined) != 1:
        raise ValueError("the replacement must define exactly one function")
    name = defined[0].name
    spans = functions(code)
    if name not in spans:
        raise KeyError(f"the program has no function {name!r}")
    first, last = spans[name]
    lines = code.split("\n")
    return "\n".join(lines[: first - 1] + new_source.strip("\n").split("\n") + lines[last:])


def _defined_and_used(tree: ast.AST) -> tuple[set[str], set[str]]:
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
    return defined, used


def self_contained(sketch: str, program: str) -> tuple[str, dict]:
    """A code sketch that stands on its own, as a skill must: the program's helper functions it calls
    are copied in (with the helpers they call), and the program's constants it reads become
    ``{{NAME}}`` placeholders declared with the program's values. Returns (sketch, placeholders
    {NAME: {"default", "doc"}}). Raises SyntaxError if either does not parse."""
    spans = functions(program)
    values = constants(program)
    lines = program.split("\n")
    parts = [sketch.strip("\n")]
    while True:
        defined, used = _defined_and_used(ast.parse("\n\n".join(parts)))
        missing = sorted(n for n in used - defined if n in spans)
        if not missing:
            break
        for name in missing:
            first, last = spans[name]
            parts.insert(0, "\n".join(lines[first - 1 : last]))
    defined, used = _defined_and_used(ast.parse("\n\n".join(parts)))
    knobs = sorted(n for n in used - defined if n in values)
    header = "\n".join(f"{name} = {placeholder(name)}" for name in knobs)
    text = "\n\n\n".join(([header] if header else []) + parts)
    return text, {name: {"default": values[name], "doc": "the value in the program it was found in"} for name in knobs}


@dataclass(frozen=True)
class Template:
    """A reference program that can serve tasks of one kind, and how to fill its prompts."""

    file: str
    kind: str
    prompt_slots: tuple[str, ...]  # constants that take the instruction's noun phrases, in order

    def code(self) -> str:
        return (PROGRAMS_DIR / self.file).read_text()


TEMPLATES = {
    "lift": Template("robosuite_lift.py", "lift", ("CUBE_PROMPT",)),
    "stack": Template("robosuite_stack.py", "place_on", ("PICK_PROMPT", "PLACE_PROMPT")),
    "put_in": Template("libero_soup_in_basket.py", "put_in", ("OBJECT_PROMPT", "CONTAINER_PROMPT")),
    "rim_place_on": Template("libero_bowl_on_plate.py", "place_on", ("OBJECT_PROMPT", "TARGET_PROMPT")),
    "close_drawer": Template("libero_close_top_drawer.py", "close_drawer", ("DRAWER_PROMPT",)),
    "open_drawer": Template("libero_open_drawer.py", "open_drawer", ("DRAWER_PROMPT",)),
    "turn_on_stove": Template("libero_turn_on_stove.py", "turn_on_stove", ("STOVE_PROMPT",)),
    "pick_place_marker": Template("robosuite_pickplacecan.py", "put_in", ("OBJECT_PROMPT", "TARGET_PROMPT")),
}

_ARTICLE = r"(?:the |a |an )?"
_PATTERNS = [
    (
        "close_drawer",
        re.compile(
            rf"(?:close|shut|push in) {_ARTICLE}(?:cabinet'?s? |cabinet’s )?"
            rf"(?P<a>top|middle|bottom|upper|lower) (?:drawer|layer)"
        ),
    ),
    (
        "open_drawer",
        re.compile(
            rf"(?:open|pull out|pull open) {_ARTICLE}(?:cabinet'?s? |cabinet’s )?"
            rf"(?P<a>top|middle|bottom|upper|lower) (?:drawer|layer)"
        ),
    ),
    ("turn_on_stove", re.compile(rf"(?:turn|switch) on {_ARTICLE}(?P<a>stove|cooktop|burner)\b")),
    ("turn_on_stove", re.compile(rf"(?:turn|switch) {_ARTICLE}(?P<a>stove|cooktop|burner) on\b")),
    (
        "put_in",
        re.compile(
            rf"(?:pick up|pick|grab|take|get|lift) {_ARTICLE}(?P<a>.+?),? (?:and |then )?"
            rf"(?:put|place|drop|set|move) (?:it )?(?:in|into|inside) {_ARTICLE}(?P<b>.+)"
        ),
    ),
    ("put_in", re.compile(rf"(?:put|place|drop|set|move) {_ARTICLE}(?P<a>.+?) (?:in|into|inside) {_ARTICLE}(?P<b>.+)")),
    (
        "place_on",
        re.compile(
            rf"(?:pick up|pick|grab|take|get) {_ARTICLE}(?P<a>.+?),? (?:and )?"
            rf"(?:put|place|set|stack) (?:it )?(?:on top of|on|onto) {_ARTICLE}(?P<b>.+)"
        ),
    ),
    (
        "place_on",
        re.compile(
            rf"(?:put|place|set|stack|move) {_ARTICLE}(?P<a>.+?) (?:on top of|on|onto) "
            rf"{_ARTICLE}(?P<b>.+)"
        ),
    ),
    ("lift", re.compile(rf"(?:lift|pick up|raise) {_ARTICLE}(?P<a>.+?)(?: off .*| from .*)?$")),
]
_LEVELS = {"upper": "top", "lower": "bottom"}
_PRONOUNS = {"it", "them", "this", "that", "one"}


def parse_instruction(instruction: str) -> tuple[str, list[str]] | None:
    """(task kind, noun phrases) for instructions the templates cover, else None.

    "pick up the alphabet soup and place it in the basket" -> ("put_in", ["alphabet soup", "basket"]);
    "close the top drawer of the cabinet" -> ("close_drawer", ["top drawer"]); "open the middle layer of
    the drawer" -> ("open_drawer", ["middle drawer"]); "switch on the stove" -> ("turn_on_stove", ["stove"]).
    """
    text = re.sub(r"[.!]+$", "", instruction.strip().lower())
    for kind, pattern in _PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        groups = [g.strip() for g in m.groups() if g]
        if any(g in _PRONOUNS for g in groups):
            continue
        if kind in ("close_drawer", "open_drawer"):
            return kind, [f"{_LEVELS.get(groups[0], groups[0])} drawer"]
        return kind, groups
    return None


def template_for(kind: str, phrases: list[str], reference: str = "") -> tuple[str, dict]:
    """(program, filled constants) of the template for a task kind; objects whose name suggests a wide
    dish (bowl, plate) use the rim-grasp variant of place-on."""
    if kind == "place_on" and phrases and re.search(r"\b(bowl|plate|dish|pan)\b", phrases[0]):
        template = TEMPLATES["rim_place_on"]
    elif kind == "place_on":
        template = TEMPLATES["stack"]
    else:
        template = TEMPLATES[kind]
    fill = dict(zip(template.prompt_slots, phrases))
    return set_constants(template.code(), fill), fill


def _accepts(fn: ast.FunctionDef) -> dict:
    """What a function definition accepts: its positional parameters (and how many are required), its
    keyword-only ones (and which are required), and whether it takes *args / **kwargs."""
    a = fn.args
    positional = [p.arg for p in a.posonlyargs + a.args]
    return {
        "positional": positional,
        "posonly": {p.arg for p in a.posonlyargs},
        "required": positional[: len(positional) - len(a.defaults)],
        "kwonly": [p.arg for p in a.kwonlyargs],
        "kwonly_required": [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is None],
        "varargs": a.vararg is not None,
        "varkw": a.kwarg is not None,
    }


def _arity_message(name: str, spec: dict, call: ast.Call) -> str:
    """Python's own TypeError for ``call`` against ``spec`` (see _accepts), or "" when it fits."""
    n_pos = len(call.args)
    names = [k.arg for k in call.keywords]
    most = len(spec["positional"])
    if n_pos > most and not spec["varargs"]:
        takes = f"{most} positional argument{'s' if most != 1 else ''}"
        return f"{name}() takes {takes} but {n_pos} {'were' if n_pos != 1 else 'was'} given"
    given = set(spec["positional"][:n_pos])
    for kw in names:
        if kw in given and kw not in spec["posonly"]:
            return f"{name}() got multiple values for argument '{kw}'"
        allowed = (set(spec["positional"]) - spec["posonly"]) | set(spec["kwonly"])
        if kw not in allowed and not spec["varkw"]:
            return f"{name}() got an unexpected keyword argument '{kw}'"
    missing = [p for p in spec["required"] if p not in given and p not in names]
    missing += [p for p in spec["kwonly_required"] if p not in names]
    if missing:
        return f"{name}() is missing required argument{'s' if len(missing) > 1 else ''} " + ", ".join(
            f"'{m}'" for m in missing
        )
    return ""


def call_arity_problems(code: str) -> list[dict]:
    """Calls of the program's own top-level functions that would raise TypeError for their arguments
    (too many positional arguments, a missing required one, an unknown or repeated keyword), found
    statically against the program's own ``def``s: [{"line", "col", "message"}] in source order.

    A helper swapped in from elsewhere (a skill's sketch) whose parameters differ from the one the
    program was written against fails this way only when the call is reached, after episodes were
    spent (``locate_box() takes 1 positional argument but 2 were given``). Calls with ``*`` / ``**``
    unpacking, names defined more than once or rebound at module level, and calls inside a function
    where the name is a local or parameter are not judged. A program that does not parse has none.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    defs: dict[str, list[ast.FunctionDef]] = {}
    rebound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defs.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.AsyncFunctionDef | ast.ClassDef):
            rebound.add(node.name)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load):
                    rebound.add(sub.id)
                elif isinstance(sub, ast.alias):
                    rebound.add((sub.asname or sub.name).split(".")[0])
    specs = {name: _accepts(fns[0]) for name, fns in defs.items() if len(fns) == 1 and name not in rebound}
    out: list[dict] = []

    def visit(node: ast.AST, shadowed: frozenset) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                for sub in ast.walk(stmt):
                    if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load):
                        local.add(sub.id)
                    elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        local.add(sub.name)
            shadowed = shadowed | frozenset(local)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            unpacked = any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords)
            if name in specs and name not in shadowed and not unpacked:
                message = _arity_message(name, specs[name], node)
                if message:
                    out.append({"line": node.lineno, "col": node.col_offset, "message": message})
        for child in ast.iter_child_nodes(node):
            visit(child, shadowed)

    try:
        visit(tree, frozenset())
    except RecursionError:
        return out
    return sorted(out, key=lambda p: (p["line"], p["col"]))


# -- multi-step instructions ----------------------------------------------------------------------------

#: Verbs that start a step of an instruction ("... and close it", "... and put the bowl in it").
_STEP_VERBS = "put|place|pick|grab|take|get|lift|close|shut|open|turn|switch|push|pull|stack|move|set|drop|slide|press"
_STEP_SPLIT = re.compile(rf"\s+and\s+(?:then\s+)?(?=(?:{_STEP_VERBS})\b)")
_PICK_CLAUSE = re.compile(r"^(?:pick up|pick|grab|take|get|lift)\b")
_PUT_IT = re.compile(r"^(?:put|place|drop|set|move|stack) it\b")
_BOTH = re.compile(
    rf"^(?P<verb>put|place|move|set|stack|drop) both {_ARTICLE}(?P<objs>.+?) "
    rf"(?P<prep>on top of|into|inside|onto|in|on) {_ARTICLE}(?P<target>.+)$"
)
_GENERIC_OBJECT = re.compile(
    rf"^(?:turn on|turn off|switch on|switch off|open|close|shut|push|pull|press|pick up|lift|grab|take|get|put|place|"
    rf"move|set|drop|slide) {_ARTICLE}(?P<a>.+?)"
    rf"(?: (?:to the (?:left|right) of|in front of|behind|next to|on top of|into|inside|onto|in|on) "
    rf"{_ARTICLE}(?P<b>.+))?$"
)
_DRAWER_OBJECT = re.compile(rf"(?:close|shut|push in|open|pull out|pull open) {_ARTICLE}(?P<a>.+)$")


@dataclass(frozen=True)
class Step:
    """One step of an instruction: its own instruction text (pronouns resolved), the template kind that
    covers it (None when no template does), the template's noun phrases, and the object and target it
    names (a later step's "it" refers to the target, else the object)."""

    text: str
    kind: str | None
    phrases: tuple[str, ...]
    object: str
    target: str


def _singular(phrase: str) -> str:
    words = phrase.split()
    if words and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-1]
    return " ".join(words)


def _clauses(text: str) -> list[str]:
    """The instruction cut at "and <verb>"; "pick up X and place it in Y" stays one clause (one template
    covers it), "put both X and Y in Z" becomes one clause per object with the shared target."""
    parts = _STEP_SPLIT.split(text)
    merged: list[str] = []
    for part in parts:
        if merged and _PICK_CLAUSE.match(merged[-1]) and _PUT_IT.match(part):
            merged[-1] = f"{merged[-1]} and {part}"
        else:
            merged.append(part)
    out = []
    for clause in merged:
        m = _BOTH.match(clause)
        if not m:
            out.append(clause)
            continue
        objects = [o.strip() for o in re.split(rf"\s+and\s+{_ARTICLE}", m["objs"]) if o.strip()]
        if len(objects) == 1:  # "both moka pots": the same kind of object twice
            objects = [_singular(objects[0])] * 2
        out.extend(f"{m['verb']} the {o} {m['prep']} the {m['target']}" for o in objects)
    return out


def parse_steps(instruction: str) -> list[Step]:
    """The steps of an instruction, each with the template kind that covers it (see Step).

    "put both the alphabet soup and the tomato sauce in the basket" -> put_in (alphabet soup, basket),
    put_in (tomato sauce, basket); "put the black bowl in the bottom drawer of the cabinet and close it"
    -> put_in (black bowl, bottom drawer of the cabinet), close_drawer (bottom drawer); "turn on the
    stove and put the moka pot on it" -> turn_on_stove (stove), place_on (moka pot, stove); "open the top
    drawer of the cabinet and put the bowl in it" -> open_drawer (top drawer), put_in (bowl, top drawer
    of the cabinet). A single-step instruction gives one step whose kind and phrases are
    parse_instruction's.
    """
    text = re.sub(r"[.!]+$", "", instruction.strip().lower())
    steps: list[Step] = []
    for clause in _clauses(text):
        referent = (steps[-1].target or steps[-1].object) if steps else ""
        if referent and re.search(r"\bit\b", clause):
            clause = re.sub(r"\bit\b", f"the {referent}", clause, count=1)
        elif referent and re.search(r" (?:inside|in there)$", clause):  # "... and put the bowl inside"
            clause = re.sub(r" (?:inside|in there)$", f" inside the {referent}", clause)
        parsed = parse_instruction(clause)
        generic = _GENERIC_OBJECT.match(clause)
        obj = (generic["a"] if generic else "").strip()
        target = ((generic["b"] or "") if generic else "").strip()
        if parsed is not None:
            kind, phrases = parsed
            if kind in ("put_in", "place_on") and len(phrases) == 2:
                obj, target = phrases
            elif kind in ("close_drawer", "open_drawer"):
                m = _DRAWER_OBJECT.search(clause)
                obj, target = (m["a"] if m and "layer" not in m["a"] else phrases[0]), ""
            elif phrases:
                obj = phrases[0]
            steps.append(Step(clause, kind, tuple(phrases), obj, target))
        else:
            steps.append(Step(clause, None, (), obj, target))
    return steps


def template_of(kind: str, phrases) -> Template:
    """The template template_for fills for a task kind and noun phrases."""
    if kind == "place_on" and phrases and re.search(r"\b(bowl|plate|dish|pan)\b", phrases[0]):
        return TEMPLATES["rim_place_on"]
    if kind == "place_on":
        return TEMPLATES["stack"]
    return TEMPLATES[kind]


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict):
        self.names = names

    def visit_Name(self, node):
        if node.id in self.names:
            node.id = self.names[node.id]
        return node

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        if node.name in self.names:
            node.name = self.names[node.name]
        return node


def _renamed(node: ast.stmt, names: dict) -> ast.stmt:
    return _Rename(names).visit(ast.parse(ast.unparse(node)).body[0]) if names else node


def _renamed_text(source: str, node: ast.stmt, names: dict) -> str:
    """The statement's source text with the names renamed in place (comments and layout kept); the
    unparsed renamed tree when the in-place edit would not give the same tree."""
    if not names:
        return source
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    lines = [line.encode() for line in source.split("\n")]
    edits = []  # (line index, byte start, byte end, new)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in names:
            edits.append((sub.lineno - first, sub.col_offset, sub.end_col_offset, names[sub.id]))
        elif isinstance(sub, ast.FunctionDef) and sub.name in names:
            row = sub.lineno - first
            m = re.search(rb"\bdef\s+(" + re.escape(sub.name.encode()) + rb")\b", lines[row])
            if m:
                edits.append((row, m.start(1), m.end(1), names[sub.name]))
    for row, start, end, new in sorted(edits, reverse=True):
        lines[row] = lines[row][:start] + new.encode() + lines[row][end:]
    text = b"\n".join(lines).decode()
    try:
        same = ast.dump(ast.parse(text).body[0]) == ast.dump(_renamed(node, names))
    except SyntaxError:
        same = False
    return text if same else ast.unparse(_renamed(node, names))


def _pieces(code: str) -> list[tuple[str, str, ast.stmt, str]]:
    """Top-level statements as (role, name, node, source with the comment lines just above it); role is
    "constant" (the first UPPER_CASE literal assignment of a name), "function" or "body". The file's
    opening comment block is left out."""
    tree = ast.parse(code)
    lines = code.split("\n")
    out, seen, previous_end = [], set(), 0
    for index, node in enumerate(tree.body):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        comment_start = first - 1
        while comment_start - 1 >= previous_end and lines[comment_start - 1].lstrip().startswith("#"):
            comment_start -= 1
        comments = [] if index == 0 else lines[comment_start : first - 1]
        source = "\n".join(lines[first - 1 : node.end_lineno])
        previous_end = node.end_lineno
        role, name = "body", ""
        if isinstance(node, ast.FunctionDef):
            role, name = "function", node.name
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            literal = isinstance(node.value, ast.Constant) and isinstance(node.value.value, (int, float, str, bool))
            if target.isupper() and literal and target not in seen:
                role, name = "constant", target
                seen.add(target)
        out.append((role, name, node, "\n".join(comments), source))
    return out


def compose(steps: list[tuple[str, str]], header: str = "") -> str:
    """One program that runs the given programs' bodies in order: [(step label, program)] -> program.

    Each program's module-level constants and top-level functions are kept once when every step that
    defines them defines them identically (after its own renames), else renamed for the step:
    constants ``STEP<i>_NAME`` (still UPPER_CASE, a ``..._PROMPT`` still ends in PROMPT) and functions
    ``step<i>_name``, with every use in that step's code renamed (ast, comments kept). Constants come
    first, then functions, then each step's statements under a ``# -- step i: label`` line. ``header``
    (comment lines) opens the program. Raises SyntaxError when a program does not parse."""
    shared: dict[str, str] = {}  # final name -> ast.dump of its definition
    constants_out, functions_out, bodies = [], [], []
    for i, (label, code) in enumerate(steps, start=1):
        pieces = _pieces(code)
        defs = {name: node for role, name, node, _, _ in pieces if role in ("constant", "function")}
        names: dict[str, str] = {}
        changed = True
        while changed:  # a definition that reads a renamed name differs too: rename until nothing changes
            changed = False
            for name, node in defs.items():
                if name in names:
                    continue
                dump = ast.dump(_renamed(node, {k: v for k, v in names.items() if k != name}))
                if name in shared and shared[name] != dump:
                    names[name] = f"STEP{i}_{name}" if name.isupper() else f"step{i}_{name}"
                    changed = True
        body = []
        for role, name, node, comments, source in pieces:
            text = _renamed_text(source, node, names)
            block = "\n".join(x for x in (comments, text) if x)
            if role == "body":
                body.append(block)
                continue
            final = names.get(name, name)
            dump = ast.dump(_renamed(node, names))
            if shared.get(final) == dump:
                continue  # the same definition is already there
            shared[final] = dump
            (constants_out if role == "constant" else functions_out).append(block)
        bodies.append(f"# -- step {i}: {label}\n" + "\n".join(body))
    parts = [header.strip("\n")] if header.strip() else []
    parts += ["\n".join(constants_out)] if constants_out else []
    parts += functions_out + bodies
    return "\n\n\n".join(parts) + "\n"


def _sketch_functions(sketch: str) -> list[str]:
    try:
        tree = ast.parse(sketch_as_python(sketch))
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]


def prelude_rebinds(sketch: str) -> set[str]:
    """Names a code sketch rebinds at module level to a call of a function it defines (``move_to_pose =
    finger_line_retry(move_to_pose, ...)``): the primitives a prelude wraps. Empty when it does not parse."""
    try:
        tree = ast.parse(sketch)
    except SyntaxError:
        return set()
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id in defined:
                out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


def names_from_outside(code: str) -> set[str]:
    """Names a program reads but never binds itself: what the sandbox predefines (the robot API, np, math)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    defined, used = _defined_and_used(tree)
    imported = {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    return used - defined - imported


def apply_skills(code: str, skills, keep: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """The program with library skills applied before it has run (round 0): a skill whose code sketch
    defines a function the program has swaps that function in (sketch filled for the program by
    worker.library.sketch.fill_for_program; skipped when the swapped function no longer accepts the
    program's calls, see call_arity_problems), and a skill whose placeholders name constants of the
    program sets them to the placeholders' declared defaults (the values the skill's source search
    found; the sketch filled by worker.library.sketch.fill_sketch). Constants in ``keep`` (the prompts
    filled from the instruction) are never set, and each constant or function is changed by the first
    skill (best first) that fits. A skill whose sketch is a prelude (it rebinds robot API primitives the
    program calls to wrappers it defines, as the offline agent's finger-line retry does: see
    prelude_rebinds) goes before the program, once. Returns (program, ["skill 'name': what changed", ...])."""
    applied: list[str] = []
    touched: set[str] = set()
    for skill in skills or []:
        sketch = skill.get("code_sketch") or ""
        name = skill.get("name") or skill.get("id") or "?"
        consts, funcs = constants(code), functions(code)
        try:
            wrapped = prelude_rebinds(sketch) & names_from_outside(code)
            if wrapped:
                filled = fill_for_program(sketch, skill.get("placeholders"), consts).strip("\n")
                if filled not in code and not (wrapped & touched) and not check_source(filled + "\n\n" + code):
                    code = filled + "\n\n\n" + code
                    touched.update(wrapped)
                    applied.append(f"skill '{name}': before the program, wrapping " + ", ".join(sorted(wrapped)))
                continue
            declared = normalise_placeholders(skill.get("placeholders"))
            swap = [f for f in _sketch_functions(sketch) if f in funcs and f not in touched]
            if swap:
                filled = fill_for_program(sketch, skill.get("placeholders"), consts)
                before = {p["message"] for p in call_arity_problems(code)}
                new = code
                for fname in swap:
                    new = replace_function(new, function_source(filled, fname))
                if any(p["message"] not in before for p in call_arity_problems(new)) or new == code:
                    continue
                code = new
                touched.update(swap)
                applied.append(f"skill '{name}': " + ", ".join(f"{f}()" for f in swap))
                continue
            knobs = [n for n in declared if n in consts and n not in keep and n not in touched]
            if not knobs:
                continue
            values = constants(fill_sketch(sketch, declared))
            change = {}
            for knob in knobs:
                new_value = values.get(knob, declared[knob]["default"])
                numeric = isinstance(consts[knob], (int, float)) and not isinstance(consts[knob], bool)
                same_type = (
                    isinstance(new_value, (int, float)) and not isinstance(new_value, bool)
                    if numeric
                    else type(new_value) is type(consts[knob])
                )
                if same_type and new_value != consts[knob]:
                    change[knob] = new_value
            if not change:
                continue
            code = set_constants(code, change)
            touched.update(change)
            applied.append(
                f"skill '{name}': " + ", ".join(f"{k} {consts[k]!r} -> {v!r}" for k, v in sorted(change.items()))
            )
        except (SketchError, KeyError, ValueError, SyntaxError):
            continue
    return code, applied


def zero_shot_program(instruction: str, skills=(), retrieve=None) -> tuple[str, str, dict]:
    """The program written for an instruction before anything has run, with the library's help:
    (program, where it came from in words, report).

    The instruction is cut into steps (parse_steps); each step a template covers gets that template
    with its prompts filled from the step's noun phrases, and the skills retrieved for the step
    (``retrieve(step text)`` when given, else ``skills``, retrieved for the whole instruction) applied
    by apply_skills; the steps' programs are composed into one (compose). Steps no template covers are
    left out and named in the origin. An instruction no step of which a template covers gets the lift
    template with the prompt "object", as before. Report: {"steps": [{"text", "kind", "fill",
    "skills_applied"}], "not_covered": [step text]}.
    """
    steps = parse_steps(instruction)
    covered = [s for s in steps if s.kind is not None]
    report = {"steps": [], "not_covered": [s.text for s in steps if s.kind is None]}
    if not covered:
        code, _ = template_for("lift", ["object"])
        return code, "the lift template (the instruction matches no template kind)", report
    programs, notes = [], []
    for step in covered:
        code, fill = template_for(step.kind, list(step.phrases))
        found = retrieve(step.text) if retrieve is not None else skills
        code, applied = apply_skills(code, found, template_of(step.kind, step.phrases).prompt_slots)
        report["steps"].append({"text": step.text, "kind": step.kind, "fill": fill, "skills_applied": applied})
        programs.append((step.text, code))
        note = f"the {step.kind} template with " + ", ".join(f"{k}={v!r}" for k, v in fill.items())
        if applied:
            note += " and " + "; ".join(applied)
        notes.append(note)
    if len(steps) == 1:
        return programs[0][1], notes[0], report
    lines = [f"# Composed for {instruction.strip()!r}, one step after another:"]
    lines += [f"#   step {i}: {s['text']} ({s['kind']} template)" for i, s in enumerate(report["steps"], 1)]
    lines += [f"#   not done (no template covers it): {t}" for t in report["not_covered"]]
    code = compose(programs, "\n".join(lines))
    origin = f"{len(covered)} of {len(steps)} steps composed: " + "; ".join(
        f"step {i} ({s['text']}) from {n}" for i, (s, n) in enumerate(zip(report["steps"], notes), 1)
    )
    if report["not_covered"]:
        origin += "; not done, no template covers: " + "; ".join(report["not_covered"])
    return code, origin, report


#: API primitives that take a text prompt, and where: (position of the positional argument, keyword name).
TEXT_PROMPT_ARGS = {
    "segment_text_prompt": (1, "text_prompt"),
    "detect_object_owlvit": (1, "text"),
}


def _parents(tree: ast.AST) -> dict:
    out = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def _enclosing_function(node, parents) -> ast.FunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _string_constants(tree: ast.Module) -> dict[str, ast.Assign]:
    """Module-level ``NAME = "text"`` assignments (any name, assigned once at module level)."""
    assigned: dict[str, list] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                assigned.setdefault(target.id, []).append(node)
    return {
        name: nodes[0]
        for name, nodes in assigned.items()
        if len(nodes) == 1
        and len(nodes[0].targets) == 1
        and isinstance(nodes[0].value, ast.Constant)
        and isinstance(nodes[0].value.value, str)
    }


def prompt_sources(code: str) -> list[dict]:
    """Where the text prompts of the program's perception calls (TEXT_PROMPT_ARGS) come from, found by
    following the argument back through the program: a string literal, a module-level string constant
    (any name), a parameter of the enclosing function (to the arguments of that function's calls), a
    ``for`` variable (to the list or tuple it iterates over). Each source once, in source order:
    {"value": the text, "name": the constant's name or None for a literal, "line", "col", "end_col"
    (the literal's position, 1-based line, 0-based columns)}. Prompts built at run time (f-strings,
    concatenation, values read from observations) are not followed. Raises SyntaxError if the
    program does not parse."""
    tree = ast.parse(code)
    parents = _parents(tree)
    consts = _string_constants(tree)
    calls_of: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls_of.setdefault(node.func.id, []).append(node)
    found: dict[tuple, dict] = {}
    seen: set = set()

    def follow(expr, depth: int) -> None:
        if expr is None or depth > 6 or id(expr) in seen:
            return
        seen.add(id(expr))
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            if expr.lineno == expr.end_lineno:
                key = (expr.lineno, expr.col_offset)
                found[key] = {
                    "value": expr.value,
                    "name": None,
                    "line": expr.lineno,
                    "col": expr.col_offset,
                    "end_col": expr.end_col_offset,
                }
        elif isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            for element in expr.elts:
                follow(element, depth + 1)
        elif isinstance(expr, ast.Name):
            function = _enclosing_function(expr, parents)
            if function is not None:
                params = [a.arg for a in function.args.posonlyargs + function.args.args]
                if expr.id in params:
                    index = params.index(expr.id)
                    for call in calls_of.get(function.name, []):
                        if index < len(call.args) and not isinstance(call.args[index], ast.Starred):
                            follow(call.args[index], depth + 1)
                        for keyword in call.keywords:
                            if keyword.arg == expr.id:
                                follow(keyword.value, depth + 1)
                    return
                loops = [
                    n
                    for n in ast.walk(function)
                    if isinstance(n, (ast.For, ast.comprehension))
                    and isinstance(n.target, ast.Name)
                    and n.target.id == expr.id
                ]
                for loop in loops:
                    follow(loop.iter, depth + 1)
                if loops or any(
                    isinstance(n, ast.Name) and n.id == expr.id and isinstance(n.ctx, ast.Store)
                    for n in ast.walk(function)
                ):
                    return  # a local name: only loops over literal collections are followed
            else:
                loops = [
                    n
                    for n in tree.body
                    if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and n.target.id == expr.id
                ]
                for loop in loops:
                    follow(loop.iter, depth + 1)
            if expr.id in consts:
                node = consts[expr.id]
                found[(node.lineno, node.col_offset)] = {
                    "value": node.value.value,
                    "name": expr.id,
                    "line": node.value.lineno,
                    "col": node.value.col_offset,
                    "end_col": node.value.end_col_offset,
                }

    for primitive, (position, keyword_name) in TEXT_PROMPT_ARGS.items():
        for call in calls_of.get(primitive, []):
            if position < len(call.args):
                follow(call.args[position], 0)
            for keyword in call.keywords:
                if keyword.arg == keyword_name:
                    follow(keyword.value, 0)
    return [found[key] for key in sorted(found)]


def set_prompt(code: str, source: dict, text: str) -> str:
    """The program with one prompt source of :func:`prompt_sources` set to ``text``: the constant
    re-assigned (set_constants, any name) or the literal replaced where it stands."""
    if source["name"]:
        return set_constants(code, {source["name"]: text})
    lines = code.split("\n")
    line = lines[source["line"] - 1]
    lines[source["line"] - 1] = line[: source["col"]] + repr(text) + line[source["end_col"] :]
    return "\n".join(lines)


#: Motion primitives and the positional index / keyword of each position argument they take.
POSITION_ARGS = {
    "move_to_pose": ((0, "position"),),
    "move_to_pose_arm0": ((0, "position"),),
    "move_to_pose_arm1": ((0, "position"),),
    "move_to_pose_both": ((0, "position0"), (2, "position1")),
    "solve_ik": ((0, "position"),),
    "solve_ik_arm0": ((0, "position"),),
    "solve_ik_arm1": ((0, "position"),),
}


#: Methods that put their arguments into the list, set or dict they are called on.
GROWING_METHODS = ("append", "extend", "insert", "add", "update")


def _scope_nodes(scope: ast.AST):
    """The nodes of one scope: a function's body or the module, without nested functions and classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _bound_values(scope: ast.AST, name: str) -> list[ast.AST]:
    """The expressions a scope binds ``name`` from: assignments (whole right-hand side when unpacked),
    augmented assignments, ``for`` targets (the iterable), ``:=`` and what ``name.append(...)`` and the
    other GROWING_METHODS put into it."""
    out = []
    for node in _scope_nodes(scope):
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.For, ast.comprehension)):
            targets, value = [node.target], node.iter
        elif isinstance(node, ast.NamedExpr):
            targets, value = [node.target], node.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in GROWING_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
        ):
            out.extend(node.args)
            continue
        if value is not None and any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
            out.append(value)
    return out


def motion_constants(code: str) -> dict:
    """{NAME: value} of the module-level numeric constants (any name, assigned once) whose value flows into
    the position argument of a motion primitive (POSITION_ARGS): directly, through assignments in the same
    scope, through the parameters of the program's own functions (to their calls' arguments) and through
    what those functions return. An over-approximation (data flow only, not control flow: a loop count
    does not feed a position; a detection score threshold that filters the points a position is computed
    from does). Raises SyntaxError if the program does not parse."""
    tree = ast.parse(code)
    parents = _parents(tree)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    numeric = {}
    for name, nodes in _module_assignments(tree).items():
        value = nodes[0].value
        literal = isinstance(value, ast.Constant) and isinstance(value.value, (int, float))
        if len(nodes) == 1 and literal and not isinstance(value.value, bool):
            numeric[name] = value.value
    calls_of: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls_of.setdefault(node.func.id, []).append(node)
    found: set[str] = set()
    seen: set = set()
    work: list[ast.AST] = []
    for primitive, places in POSITION_ARGS.items():
        for call in calls_of.get(primitive, []):
            for index, keyword in places:
                if index < len(call.args):
                    work.append(call.args[index])
                work.extend(k.value for k in call.keywords if k.arg == keyword)
    while work:
        expr = work.pop()
        if id(expr) in seen:
            continue
        seen.add(id(expr))
        for node in ast.walk(expr):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defs:
                work.extend(r.value for r in ast.walk(defs[node.func.id]) if isinstance(r, ast.Return) and r.value)
            if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
                continue
            function = _enclosing_function(node, parents)
            scope = function or tree
            bound = _bound_values(scope, node.id)
            work.extend(bound)
            if function is not None and not bound:
                params = [a.arg for a in function.args.posonlyargs + function.args.args]
                if node.id in params:
                    index = params.index(node.id)
                    for call in calls_of.get(function.name, []):
                        if index < len(call.args):
                            work.append(call.args[index])
                        work.extend(k.value for k in call.keywords if k.arg == node.id)
                    continue
                work.extend(_bound_values(tree, node.id))
            if node.id in numeric and (function is None or not bound):
                found.add(node.id)
    return {name: numeric[name] for name in sorted(found)}


def _module_assignments(tree: ast.Module) -> dict[str, list[ast.Assign]]:
    out: dict[str, list] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node)
    return out
