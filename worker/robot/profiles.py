"""API profiles: which calling conventions a program runs under, and the "auto" rule that picks one.

Two profiles (worker.robot.primitive.PROFILES):

- ``native``: this project's robot API (worker.robot.api's docstrings): statuses as strings, None where
  a search finds nothing (solve_ik, select_top_down_grasp), (N, 3) point clouds.
- ``published``: the public CaP-X / ASPIRE reduced API's conventions where they differ
  (worker.robot.api_published): solve_ik returns best-effort joints, select_top_down_grasp returns
  ``(pose, score)`` or ``(None, -inf)``, plan_grasp raises AssertionError when it finds nothing,
  pixel_to_world_point takes (u, v, z, intrinsics, extrinsics), depth_to_point_cloud returns an
  organised (H, W, 3) camera-frame cloud, interpolate_segment returns a list with ``step=0.03``, the
  published keyword names, robot{i}_cartesian_pos in the published hand frame, and the published-only
  functions (goto_pose, goto_home_joint_position, point_prompt_molmo, plan_grasp_from_point_clouds,
  subsample_point_cloud, filter_noise, normalize_vector, rotation_matrix_to_quaternion, and the
  detect_object_owlvit / segment_sam2 pair of the published TwoArmLift API). The program
  also finds the published runner's globals: ``obs`` and ``INPUTS`` (an observation taken before its
  first line, depth (H, W, 1), with "full_prompt"), ``RESULT = None`` and a camera-only ``env`` whose
  ``env.handle.task_language`` is the task's instruction. Every native-only function stays callable.

``auto`` (the default) reads the program before it runs (:func:`detect_profile`):

1. published when the program shows any published-only usage (:func:`published_signals`: a function,
   keyword, observation key, import or runner global only the published API has, or
   select_top_down_grasp's result used as a tuple);
2. otherwise native when it shows native-only usage (:func:`native_signals`: move_to_pose*,
   segment_text_prompt / segment_point_prompt, a native-only keyword, get_observation with camera names,
   select_top_down_grasp's result read by key);
3. otherwise published: the program calls only names both APIs share (get_observation,
   segment_sam3_*, plan_grasp, solve_ik, move_to_joints, the grippers, ...), which is how programs for
   the published reduced API are written; the two profiles then differ only in solve_ik's answer when
   no configuration reaches the pose (best-effort joints instead of None).

A run can fix the profile instead (run setting ``api_profile``, ``run_program --api-profile``).
"""

from __future__ import annotations

import ast
import symtable

from .primitive import NATIVE, PROFILES, PUBLISHED

AUTO = "auto"
PROFILE_CHOICES = (AUTO, *PROFILES)

#: Functions only the published reduced API has.
PUBLISHED_ONLY_FUNCTIONS = frozenset(
    {
        "goto_pose",
        "goto_home_joint_position",
        "point_prompt_molmo",
        "plan_grasp_from_point_clouds",
        "subsample_point_cloud",
        "filter_noise",
        "normalize_vector",
        "rotation_matrix_to_quaternion",
        "detect_object_owlvit",
        "segment_sam2",
    }
)
#: Keyword arguments only the published signatures have, per function.
PUBLISHED_KEYWORDS = {
    "select_top_down_grasp": {"grasps", "scores", "cam_to_world", "vertical_threshold"},
    "interpolate_segment": {"p1", "p2", "step"},
    "pixel_to_world_point": {"u", "v", "z", "extrinsics"},
    "mask_to_world_points": {"extrinsics"},
    "depth_to_point_cloud": {"depth_img"},
    "transform_points": {"transform_matrix"},
    "decompose_transform": {"T"},
}
#: Observation keys only the published observation has (string constants a program indexes with).
PUBLISHED_KEYS = frozenset({"robot_joint_pos", "robot_cartesian_pos", "full_prompt"})
#: Globals the published runner defines for a program.
PUBLISHED_GLOBALS = frozenset({"obs", "INPUTS", "RESULT", "env", "APIS"})
#: Modules only published programs import (the sandbox serves them to both profiles).
PUBLISHED_IMPORTS = frozenset({"scipy.spatial.transform"})
#: Functions whose published result is a tuple where the native one is a dict or None.
TUPLE_RESULTS = frozenset({"select_top_down_grasp"})
#: Functions only the native API has.
NATIVE_ONLY_FUNCTIONS = frozenset(
    {
        "move_to_pose",
        "move_to_pose_arm0",
        "move_to_pose_arm1",
        "move_to_pose_both",
        "segment_text_prompt",
        "segment_point_prompt",
    }
)
#: Keyword arguments only the native signatures have.
NATIVE_KEYWORDS = frozenset(
    {"collision_check", "max_tilt_deg", "max_step", "grasp_poses", "grasp_scores", "pose_mat", "camera_names"}
)
#: Keys of native select_top_down_grasp's dict.
NATIVE_GRASP_KEYS = frozenset({"pose", "position", "quaternion_wxyz", "score", "index"})


def check_profile_choice(value: str) -> str:
    """``value`` when it is one of PROFILE_CHOICES; raises ValueError naming them."""
    if value not in PROFILE_CHOICES:
        raise ValueError(f"api_profile must be one of {', '.join(PROFILE_CHOICES)}, not {value!r}")
    return value


def _called_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else ""


def published_signals(source: str) -> list[str]:
    """Why ``source`` looks written for the published API: one line per kind of evidence, with its
    program line (empty when none, or when the source does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: dict[str, str] = {}

    def note(key: str, text: str, node: ast.AST) -> None:
        found.setdefault(key, f"{text} (line {getattr(node, 'lineno', 0)})")

    unbound = unbound_globals(source)
    tuple_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in PUBLISHED_ONLY_FUNCTIONS:
                note(name, f"calls {name}", node)
            keywords = PUBLISHED_KEYWORDS.get(name, set()) & {k.arg for k in node.keywords if k.arg}
            if keywords:
                note(f"{name}-kw", f"calls {name} with {', '.join(sorted(keywords))}=", node)
            if name == "pixel_to_world_point" and len(node.args) == 5:
                note(name, "calls pixel_to_world_point(u, v, z, intrinsics, extrinsics)", node)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            name = _called_name(node.value)
            if name in TUPLE_RESULTS:
                for target in node.targets:
                    if isinstance(target, (ast.Tuple, ast.List)):
                        note(f"{name}-unpack", f"unpacks {name}'s result as a tuple", node)
                    elif isinstance(target, ast.Name):
                        tuple_names.add(target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in PUBLISHED_KEYS:
            note(f"key-{node.value}", f"reads the observation key {node.value!r}", node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module in PUBLISHED_IMPORTS:
                    note(f"import-{module}", f"imports {module}", node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in PUBLISHED_GLOBALS and node.id in unbound:
                note(f"global-{node.id}", f"uses the published runner's global {node.id!r}", node)
    for node in ast.walk(tree):  # `best = select_top_down_grasp(...)` then best[0] / best[1]
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in tuple_names
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
        ):
            note("tuple-index", f"indexes select_top_down_grasp's result {node.value.id}[{node.slice.value}]", node)
    return list(found.values())


def native_signals(source: str) -> list[str]:
    """Why ``source`` looks written for the native API (same form as :func:`published_signals`)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: dict[str, str] = {}
    grasp_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if _called_name(node.value) in TUPLE_RESULTS:
                grasp_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name in NATIVE_ONLY_FUNCTIONS:
                found.setdefault(name, f"calls {name} (line {line})")
            keywords = NATIVE_KEYWORDS & {k.arg for k in node.keywords if k.arg}
            if keywords:
                found.setdefault(f"kw-{name}", f"calls {name} with {', '.join(sorted(keywords))}= (line {line})")
            if name == "get_observation" and node.args:
                found.setdefault("cameras", f"asks get_observation for cameras (line {line})")
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in grasp_names
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in NATIVE_GRASP_KEYS
        ):
            found.setdefault("grasp-key", f"reads select_top_down_grasp's {node.slice.value!r} (line {line})")
    return list(found.values())


def detect_profile(source: str) -> tuple[str, list[str]]:
    """(profile, reasons) for ``source`` under "auto" (the module docstring's rule)."""
    reasons = published_signals(source)
    if reasons:
        return PUBLISHED, reasons
    reasons = native_signals(source)
    if reasons:
        return NATIVE, reasons
    return PUBLISHED, ["calls only functions both APIs share, as programs for the published API do"]


def resolve_profile(choice: str, source: str) -> tuple[str, str]:
    """(profile, why) for a run's ``choice`` (auto, native or published) and its program."""
    check_profile_choice(choice)
    if choice != AUTO:
        return choice, f"{choice} (set for the run)"
    profile, reasons = detect_profile(source)
    return profile, f"{profile} (auto: the program " + "; ".join(reasons[:3]) + ")"


def unbound_globals(source: str) -> frozenset[str]:
    """Names ``source`` reads as globals (at module level, or in a function where they are neither
    parameters nor locals) but never binds at module level: what the runner must provide. Scopes come
    from Python's own symbol tables (symtable). Empty when the source does not compile."""
    try:
        top = symtable.symtable(source, "<program>", "exec")
    except (SyntaxError, ValueError):
        return frozenset()
    bound = {sym.get_name() for sym in top.get_symbols() if sym.is_assigned() or sym.is_imported()}
    read: set[str] = set()
    stack = [top]
    while stack:
        table = stack.pop()
        for sym in table.get_symbols():
            if not sym.is_referenced():
                continue
            if table is top or sym.is_global() or (sym.is_free() and table.get_type() == "class"):
                read.add(sym.get_name())
        stack.extend(table.get_children())
    return frozenset(read - bound)


def needs_initial_observation(source: str) -> bool:
    """Whether a published-profile program reads ``obs`` or ``INPUTS`` as globals it never assigns at
    module level, so the runner must provide them (an observation costs a render of every camera)."""
    return bool({"obs", "INPUTS"} & unbound_globals(source))
