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

from worker.library.sketch import placeholder

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
    "close the top drawer of the cabinet" -> ("close_drawer", ["top drawer"]).
    """
    text = re.sub(r"[.!]+$", "", instruction.strip().lower())
    for kind, pattern in _PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        groups = [g.strip() for g in m.groups() if g]
        if any(g in _PRONOUNS for g in groups):
            continue
        if kind == "close_drawer":
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
