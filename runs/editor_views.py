"""JSON endpoints behind the launch form's program editor (static/js/launch.js): a task's starter
program, the robot API reference for completion and hover docs, and the live policy check.

The reference is generated from worker.robot.api's docstrings (RobotAPI.reference, the same source as
api_reference_markdown), never a hand-kept copy; the check is runs.services.program_problems, the same
one that refuses a launch.
"""

import functools
import json

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_POST

from worker.robot.profiles import NATIVE, PROFILES

from . import services
from .models import Task

#: The most program text the live check reads (create_program_run refuses longer programs anyway).
MAX_PROGRAM_CHARS = 200_000


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


@functools.cache
def _reference(arms: int, profile: str) -> list[dict]:
    from worker.robot.api import RobotAPI  # imports numpy and scipy: only when first asked

    return [{k: e[k] for k in ("name", "signature", "doc", "alias_of")} for e in RobotAPI.reference(arms, profile)]


@login_required
@require_GET
def starter_program(request):
    """``?task=<key>`` -> {"task", "program" ("" when the task has none), "arms"}."""
    task = Task.objects.filter(key=request.GET.get("task", "")).first()
    if task is None:
        return _bad("unknown task: give ?task=<key> of a catalog task", 404)
    return JsonResponse({"task": task.key, "program": task.starter_program, "arms": task.arms})


@login_required
@require_GET
def api_reference(request):
    """``?arms=1|2&profile=native|published`` -> {"arms", "profile", "primitives": [{"name", "signature",
    "doc", "alias_of"}]} for the primitives a task with that many arms offers under that profile."""
    arms = request.GET.get("arms", "1")
    profile = request.GET.get("profile") or NATIVE
    if arms not in ("1", "2"):
        return _bad("arms must be 1 or 2")
    if profile not in PROFILES:
        return _bad(f"profile must be one of {', '.join(PROFILES)}")
    return JsonResponse({"arms": int(arms), "profile": profile, "primitives": _reference(int(arms), profile)})


@login_required
@require_POST
def check_program(request):
    """POST {"program": text} (JSON, or a form field) -> {"ok", "problems": [{"line", "col", "message",
    "severity"}]}: "error"s (the sandbox policy, syntax) refuse a launch, "warning"s (a call of the
    program's own function with the wrong arguments) do not. The editor calls it as you type."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _bad("the body is not JSON")
        program = body.get("program") if isinstance(body, dict) else None
    else:
        program = request.POST.get("program")
    if not isinstance(program, str):
        return _bad('send {"program": "<source>"}')
    if len(program) > MAX_PROGRAM_CHARS:
        return _bad(f"the program is longer than {MAX_PROGRAM_CHARS} characters")
    problems = services.program_problems(program)
    return JsonResponse({"ok": not any(p["severity"] == "error" for p in problems), "problems": problems})
