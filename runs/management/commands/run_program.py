"""Headless: run a program on seeds of a task through the same sandbox, tracer and database.

python manage.py run_program --task robosuite:Lift --seeds 101-103 --program PATH --json
"""

import contextlib
import json
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from runs import services
from worker.robot.profiles import PROFILE_CHOICES
from worker.sim.catalog import parse_seeds


@contextlib.contextmanager
def stdout_to_stderr():
    """Route file descriptor 1 to stderr while the engine runs, so native libraries that print
    (GL drivers, simulators) cannot corrupt the single JSON document this command writes."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class Command(BaseCommand):
    help = "Run a robot program on seeds of a task and store the run (and print it as JSON with --json)."

    def add_arguments(self, parser):
        parser.add_argument("--task", required=True, help='task key, e.g. "robosuite:Lift"')
        parser.add_argument("--seeds", required=True, help='"101-103", "1,4,9" or a mix')
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--program", help="path of a Python file that calls the robot API")
        source.add_argument("--starter", action="store_true", help="use the task's built-in starter program")
        parser.add_argument("--json", action="store_true", help="print one JSON object describing the run")
        parser.add_argument("--wall-seconds", type=float, help="per-episode wall-clock limit")
        parser.add_argument("--memory-mb", type=int, help="sandbox memory cap")
        parser.add_argument("--no-trace", action="store_true", help="record no primitive calls or keyframes")
        parser.add_argument(
            "--perception-mode",
            choices=services.PERCEPTION_MODES,
            help="realistic (default: a segmentation model's errors, noisy depth) or oracle (exact render)",
        )
        parser.add_argument(
            "--api-profile",
            choices=PROFILE_CHOICES,
            help="auto (default: the published CaP-X / ASPIRE reduced API's conventions when the program uses "
            "them), native or published",
        )
        parser.add_argument(
            "--step-budget", type=int, help="control steps per episode (default: the task's benchmark budget; 0: none)"
        )

    def handle(self, *args, **opts):
        try:
            seeds = parse_seeds(opts["seeds"])
            task = services.get_task(opts["task"])
        except (ValueError, services.LaunchError) as exc:
            raise CommandError(str(exc)) from None
        if opts["starter"]:
            program, origin = task.starter_program, "starter"
            if not program:
                raise CommandError(f"{task.key} has no built-in starter program")
        else:
            path = Path(opts["program"])
            try:
                program = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise CommandError(f"program file not found: {path}") from None
            except (UnicodeDecodeError, OSError) as exc:
                raise CommandError(f"cannot read program file {path}: {exc}") from None
            origin = "file"
        overrides = {}
        if opts["wall_seconds"] is not None:
            overrides["wall_seconds"] = opts["wall_seconds"]
        if opts["memory_mb"] is not None:
            overrides["memory_mb"] = opts["memory_mb"]
        if opts["perception_mode"]:
            overrides["perception_mode"] = opts["perception_mode"]
        if opts["api_profile"]:
            overrides["api_profile"] = opts["api_profile"]
        if opts["step_budget"] is not None:
            overrides["step_budget"] = opts["step_budget"]
        if opts["no_trace"]:
            overrides.update(trace=False, keyframes=False)
        try:
            run = services.create_program_run(
                task=task,
                program=program,
                seeds=seeds,
                origin=origin,
                source="cli",
                settings=overrides,
                label=Path(opts["program"]).name if opts["program"] else "starter program",
                # The command shows what the sandbox itself does with a program (POLICY_VIOLATION
                # episodes included); the web form and the REST API refuse such programs up front.
                check_policy=False,
            )
        except services.LaunchError as exc:
            raise CommandError(str(exc)) from None
        with stdout_to_stderr():
            run = services.execute_run(run.pk)
        summary = services.run_summary(run)
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(f"run {run.pk} on {task.key}: {run.status}, success rate {summary['success_rate']}")
        if not summary["contained"]:
            self.stdout.write("  NOT CONTAINED: programs ran as plain processes (ASPIRE_SANDBOX=process)")
        profiles = sorted({ep["api_profile_reason"] for ep in summary["episodes"] if ep["api_profile_reason"]})
        for reason in profiles:
            self.stdout.write(f"  API profile: {reason}")
        for ep in summary["episodes"]:
            flag = "ok  " if ep["success"] else "FAIL"
            self.stdout.write(
                f"  seed {ep['seed']:>5} {flag} {ep['status']:<17} {len(ep['calls'])} calls  {ep['error']}"
            )
