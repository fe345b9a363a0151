"""The API-policy check of admission: a skill's code must be portable robot-API code.

Applied to a skill's code sketch (placeholders allowed, see worker.library.sketch) and to the programs it came
from (before/after the repair). On top of the sandbox's own static check
(worker.sandbox.policy.check_source: no imports, files, dunders, interpreter internals) it requires:

- only robot API names of either API profile (worker.robot.api.RobotAPI.reference(), native and
  published), ``np``/``numpy``, ``math``, the published runner's ``obs``/``INPUTS``/``RESULT``, the sandbox
  builtins and names the code binds itself (imports included); anything else is UNKNOWN_NAME;
- no simulator state (SIMULATOR_STATE): names such as ``env``/``sim`` (``env.handle.task_language``, the
  instruction, excepted), attributes such as
  ``.body_xpos``/``.qpos``, privileged observation keys such as ``obs["cube_pos"]``; no asset files
  (ASSET_FILE): ``.xml``/``.urdf``/``.bddl`` names;
- no seed-specific logic (SEED_BRANCH): a name like ``seed`` or ``seed_id`` (programs are never told
  their seed, so any test on one was copied from a single episode);
- no scene constants (SCENE_CONSTANT): a position handed to ``move_to_pose``/``solve_ik`` (any arm)
  that is computed from numeric literals alone, i.e. absolute world coordinates, and vectors named
  like a location (``CUBE_POS = [0.12, -0.05, 0.83]``) with two or more non-zero coordinates. An
  axis-aligned offset such as ``[0, 0, 0.1]`` added to a perceived position is fine.

A sketch is therefore self-contained: it defines functions whose parameters are its inputs (images,
poses) and may call them. Name binding is checked per module, not per scope: a name bound anywhere
counts as defined. That is lenient by design; the sandbox still refuses what it cannot resolve.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import asdict, dataclass

from worker.library.sketch import placeholder_problems, sketch_as_python
from worker.sandbox.policy import ALLOWED_DUNDER_NAMES, SAFE_BUILTIN_NAMES, check_source, is_syntax_error

MODULE_NAMES = frozenset({"np", "numpy", "math"})
SIMULATOR_NAMES = frozenset(
    {"env", "sim", "physics", "robosuite", "mujoco", "libero", "simulator", "mj_model", "mj_data"}
)
SIMULATOR_ATTRIBUTES = frozenset(
    {
        "sim",
        "env",
        "physics",
        "mj_model",
        "mj_data",
        "body_xpos",
        "body_xquat",
        "xpos",
        "xquat",
        "xmat",
        "qpos",
        "qvel",
        "site_xpos",
        "geom_xpos",
        "get_body_xpos",
        "get_body_xquat",
        "get_site_xpos",
        "get_joint_qpos",
        "set_joint_qpos",
        "body_name2id",
        "site_name2id",
        "geom_name2id",
        "joint_name2id",
        "placement_initializer",
        "model_xml",
    }
)
ROBOT_STATE_KEYS = frozenset(
    {
        "robot0_cartesian_pos",
        "robot0_joint_pos",
        "robot1_cartesian_pos",
        "robot1_joint_pos",
        "robot0_gripper_qpos",
        "robot1_gripper_qpos",
        # the published reduced API's one-arm readings (worker.robot.api get_observation)
        "robot_joint_pos",
        "robot_cartesian_pos",
    }
)
#: Globals the published API's runner gives a program (worker.robot.profiles): camera-only data.
RUNNER_GLOBALS = frozenset({"obs", "INPUTS", "RESULT"})
#: The only reads of ``env`` a program may make: the task's instruction (worker.robot.profiles).
ENV_INSTRUCTION = ("env.handle.task_language", "env.task_language")
PRIVILEGED_KEY_RE = re.compile(r"(_pos|_quat|_xpos|_qpos|_qvel|-state)$")
ASSET_RE = re.compile(r"\.(xml|urdf|bddl|mjcf|usda?|stl|obj|msh)$", re.IGNORECASE)
SEED_NAME_RE = re.compile(r"(^|_)seeds?($|_)", re.IGNORECASE)
LOCATION_NAME_RE = re.compile(
    r"(pos|position|xyz|target|goal|center|centre|location|place|grasp|handle|point)", re.IGNORECASE
)
RELATIVE_NAME_RE = re.compile(
    r"(offset|delta|shift|step|dir|axis|size|extent|scale|tol|margin|clearance|dims?$)", re.IGNORECASE
)
MOTION_PREFIXES = ("move_to_pose", "solve_ik")
EPS = 1e-9


@dataclass(frozen=True)
class PolicyIssue:
    """One reason a skill's code fails the policy: ``where`` names the code (sketch or program)."""

    code: str
    where: str
    line: int
    message: str

    def describe(self) -> str:
        return f"{self.where}, line {self.line}: {self.message}" if self.line else f"{self.where}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def api_names() -> frozenset[str]:
    """Every robot API function name (aliases included) of either API profile (native, and the published
    reduced API's), from the API's own registry."""
    from worker.robot.api import RobotAPI
    from worker.robot.primitive import PROFILES

    return frozenset(entry["name"] for profile in PROFILES for entry in RobotAPI.reference(arms=2, profile=profile))


def allowed_names() -> frozenset[str]:
    return api_names() | MODULE_NAMES | SAFE_BUILTIN_NAMES | ALLOWED_DUNDER_NAMES | RUNNER_GLOBALS


def describe_issues(issues: list[PolicyIssue]) -> str:
    """One line per issue, for a skill's status reason."""
    return "\n".join(issue.describe() for issue in issues)


def check_program(source: str, where: str = "program", extra_names: frozenset[str] = frozenset()) -> list[PolicyIssue]:
    """The policy issues of one piece of robot code, in line order; [] means it passes.

    ``extra_names`` are names the caller defines (a sketch's placeholders).
    """
    violations = check_source(source)
    if is_syntax_error(violations):
        v = violations[0]
        return [PolicyIssue("SYNTAX", where, v.line, v.describe())]
    issues = [PolicyIssue("SANDBOX_POLICY", where, v.line, v.describe()) for v in violations]
    tree = ast.parse(source)
    checker = _SceneChecker(where, allowed_names() | extra_names)
    checker.run(tree)
    issues.extend(checker.issues)
    return sorted(issues, key=lambda i: (i.line, i.code))


def check_sketch(sketch: str, placeholders: dict) -> list[PolicyIssue]:
    """Check a code sketch: its placeholders match their declarations and its code passes."""
    where = "code sketch"
    issues = [PolicyIssue("PLACEHOLDER", where, 0, problem) for problem in placeholder_problems(sketch, placeholders)]
    for name, spec in placeholders.items():
        vector = spec.get("default")
        if _is_location_name(name) and isinstance(vector, list) and _looks_like_coordinates(vector):
            issues.append(
                PolicyIssue(
                    "SCENE_CONSTANT",
                    where,
                    0,
                    f"placeholder {name} defaults to absolute coordinates {vector}: a location must come from "
                    "perception (mask_to_world_points) or the current gripper pose, not from one scene",
                )
            )
    if sketch.strip():
        issues.extend(check_program(sketch_as_python(sketch), where, frozenset(placeholders)))
    return issues


def check_skill_code(
    sketch: str, placeholders: dict, before_program: str = "", after_program: str = ""
) -> list[PolicyIssue]:
    """Admission step 1: the sketch and the programs the skill came from, all checked."""
    issues = check_sketch(sketch, placeholders)
    for where, source in (("before program", before_program), ("after program", after_program)):
        if source and source.strip():
            issues.extend(check_program(source, where))
    return issues


def _is_location_name(name: str) -> bool:
    return bool(LOCATION_NAME_RE.search(name)) and not RELATIVE_NAME_RE.search(name)


def _looks_like_coordinates(values: list[float]) -> bool:
    # An axis-aligned offset has one non-zero component; two or more place a point in the scene.
    if len(values) not in (2, 3) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return False
    return sum(abs(v) > EPS for v in values) >= 2


def _number(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        if inner is not None:
            return -inner if isinstance(node.op, ast.USub) else inner
    return None


def _literal_vector(node: ast.AST) -> list[float] | None:
    """[x, y(, z)] when ``node`` is a list/tuple (or np.array of one) of numeric literals."""
    if isinstance(node, ast.Call) and node.args and _is_array_constructor(node.func):
        node = node.args[0]
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_number(elt) for elt in node.elts]
        if values and all(v is not None for v in values):
            return values
    return None


def _is_array_constructor(func: ast.AST) -> bool:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id in ("np", "numpy") and func.attr in ("array", "asarray", "asanyarray")
    return isinstance(func, ast.Name) and func.id in ("list", "tuple")


class _SceneChecker:
    """Finds unknown names, simulator state, asset files, seed logic and scene constants."""

    def __init__(self, where: str, allowed: frozenset[str]):
        self.where = where
        self.allowed = allowed
        self.issues: list[PolicyIssue] = []
        self._reported: set[tuple[str, str]] = set()

    def flag(self, code: str, node: ast.AST, message: str, key: str | None = None) -> None:
        if key is not None:
            if (code, key) in self._reported:
                return
            self._reported.add((code, key))
        self.issues.append(PolicyIssue(code, self.where, getattr(node, "lineno", 0), message))

    def run(self, tree: ast.AST) -> None:
        bound = _bound_names(tree)
        # `env.handle.task_language` reads the instruction, not the simulator: its `env` is not flagged.
        self._instruction_reads = {
            id(node.value.value if isinstance(node.value, ast.Attribute) else node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and ast.unparse(node) in ENV_INSTRUCTION
        }
        constant_names = _constant_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._name(node, bound)
            elif isinstance(node, ast.Attribute) and node.attr in SIMULATOR_ATTRIBUTES:
                self.flag(
                    "SIMULATOR_STATE",
                    node,
                    f"'.{node.attr}' reads simulator state; robot programs see the "
                    "scene only through cameras and the robot API",
                    key=node.attr,
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self._string(node)
            elif isinstance(node, ast.Subscript):
                self._subscript(node)
            elif isinstance(node, ast.Compare):
                self._compare(node)
            elif isinstance(node, ast.Call):
                self._call(node, constant_names)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                self._assignment(node)

    def _name(self, node: ast.Name, bound: set[str]) -> None:
        name = node.id
        if SEED_NAME_RE.search(name):
            self.flag(
                "SEED_BRANCH",
                node,
                f"'{name}': programs are never told their seed, so logic on it was copied from single episodes",
                key=name,
            )
        elif id(node) in self._instruction_reads:
            return
        elif name in SIMULATOR_NAMES and name not in bound:
            self.flag(
                "SIMULATOR_STATE",
                node,
                f"'{name}' refers to the simulator; robot programs see the scene only "
                "through cameras and the robot API",
                key=name,
            )
        elif name not in bound and name not in self.allowed:
            self.flag(
                "UNKNOWN_NAME",
                node,
                f"'{name}' is not a robot API function, np, math, a sandbox builtin or a name the code defines",
                key=name,
            )

    def _string(self, node: ast.Constant) -> None:
        if ASSET_RE.search(node.value.strip()):
            self.flag(
                "ASSET_FILE",
                node,
                f"{node.value!r} names a simulator asset file; programs cannot read assets",
                key=node.value,
            )

    def _subscript(self, node: ast.Subscript) -> None:
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            text = key.value
            if text not in ROBOT_STATE_KEYS and (PRIVILEGED_KEY_RE.search(text) or text == "object"):
                self.flag(
                    "SIMULATOR_STATE",
                    node,
                    f"observation key {text!r} is privileged simulator state; "
                    "get_observation gives camera images and the robots' joint, cartesian and gripper state only",
                    key=text,
                )

    def _compare(self, node: ast.Compare) -> None:
        for side in [node.left, *node.comparators]:
            if isinstance(side, ast.Attribute) and SEED_NAME_RE.search(side.attr):
                self.flag("SEED_BRANCH", node, f"comparison on '.{side.attr}' branches on the seed", key=side.attr)

    def _call(self, node: ast.Call, constant_names: dict[str, ast.AST]) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else ""
        if not name.startswith(MOTION_PREFIXES):
            return
        position = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "position"), None)
        if position is not None and _is_constant_expr(position, constant_names):
            shown = ast.unparse(position)
            self.flag(
                "SCENE_CONSTANT",
                node,
                f"{name} gets the absolute position {shown[:80]}, built from numeric "
                "literals alone: derive targets from perception (mask_to_world_points) or the current gripper "
                "pose plus offsets",
            )

    def _assignment(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        vector = _literal_vector(node.value) if node.value is not None else None
        if vector is None or not _looks_like_coordinates(vector):
            return
        for target in targets:
            if isinstance(target, ast.Name) and _is_location_name(target.id):
                self.flag(
                    "SCENE_CONSTANT",
                    node,
                    f"{target.id} = {vector} hard-codes a scene location; measure it with perception in each episode",
                    key=target.id,
                )


def _bound_names(tree: ast.AST) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            # Only the sandbox's curated numpy/math imports get past its own check (run first).
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return bound


def _constant_names(tree: ast.AST) -> dict[str, ast.AST]:
    """Names every assignment of which is a numeric-literal expression (and that are never rebound otherwise)."""
    assigned: dict[str, list[ast.AST]] = {}
    rebound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
                else:
                    rebound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.comprehension, ast.NamedExpr)):
            target = node.target
            rebound.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.arg):
            rebound.add(node.arg)
    out: dict[str, ast.AST] = {}
    # Resolve in rounds so A = [..]; B = A + [..] makes both constant.
    changed = True
    while changed:
        changed = False
        for name, values in assigned.items():
            if name in out or name in rebound:
                continue
            if all(_is_constant_expr(v, out) for v in values):
                out[name] = values[0]
                changed = True
    return out


def _is_constant_expr(node: ast.AST, constant_names: dict[str, ast.AST]) -> bool:
    """True when ``node`` evaluates from numeric literals alone (no observation feeds it)."""
    if _number(node) is not None:
        return True
    if isinstance(node, ast.Name):
        return node.id in constant_names
    if isinstance(node, (ast.List, ast.Tuple)):
        return bool(node.elts) and all(_is_constant_expr(e, constant_names) for e in node.elts)
    if isinstance(node, ast.BinOp):
        return _is_constant_expr(node.left, constant_names) and _is_constant_expr(node.right, constant_names)
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expr(node.operand, constant_names)
    if isinstance(node, ast.Call) and _is_array_constructor(node.func) and len(node.args) == 1:
        return _is_constant_expr(node.args[0], constant_names)
    return False
