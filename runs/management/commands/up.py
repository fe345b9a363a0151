"""Run the main job: database set-up, a private Redis when REDIS_URL is unset, a Celery worker and the
ASGI web server (Daphne), until Ctrl-C or until one of them stops."""

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from aspire_web import localredis


class Command(BaseCommand):
    help = "Start web + worker (+ a private Redis when REDIS_URL is not set)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ASPIRE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("ASPIRE_PORT", 8000)))
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("ASPIRE_WORKERS", 2)),
            help="worker processes (each runs one episode at a time)",
        )
        parser.add_argument("--redis-port", type=int, default=int(os.environ.get("ASPIRE_REDIS_PORT", 0)) or None)
        parser.add_argument(
            "--no-first-user",
            action="store_true",
            help="do not create the first (admin) account on a database that has no users",
        )

    def report_sandbox(self):
        from worker.sandbox import containment

        try:
            box = containment.current()
        except containment.SandboxUnavailable as exc:
            self.stderr.write(
                f"WARNING: the worker will refuse to run robot programs: {exc}. Install bubblewrap "
                f"(scripts/install.sh does), or set {containment.MODE_ENV}=process to run them "
                "without OS containment (every episode is then marked not contained)."
            )
            return
        line = f"sandbox: {box.label} ({box.detail})"
        self.stdout.write(line if box.contained else f"WARNING: {line}")

    def handle(self, *args, **opts):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_tasks", verbosity=0)
        call_command("load_seed_skills", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not opts["no_first_user"]:
            self.first_user()
        self.report_sandbox()
        children = []
        env = dict(os.environ)
        if not env.get("REDIS_URL"):
            try:
                redis_proc, url = localredis.start(settings.VAR_DIR / "redis", opts["redis_port"])
            except localredis.RedisUnavailable as exc:
                raise CommandError(str(exc)) from None
            children.append(("redis", redis_proc))
            env["REDIS_URL"] = url
            self.stdout.write(f"started a private Redis at {url}")
        env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local"))
        queues = sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *(q for q in settings.ASPIRE["QUEUES"].values() if q)})
        worker = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "aspire_web",
            "worker",
            "-l",
            "INFO",
            "-c",
            str(opts["workers"]),
            "-Q",
            ",".join(queues),
            "-n",
            "aspire@%h",
        ]
        web = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            opts["host"],
            "-p",
            str(opts["port"]),
            "aspire_web.asgi:application",
        ]
        children.append(("worker", subprocess.Popen(worker, env=env)))
        children.append(("web", subprocess.Popen(web, env=env)))
        self.stdout.write(f"ASPIRE web is up: http://{opts['host']}:{opts['port']}/  (Ctrl-C stops everything)")

        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while not stopping:
                for name, proc in children:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping")
                        exit_code = proc.returncode or 1
                        stopping.append(name)
                        break
                time.sleep(0.5)
        finally:
            for name, proc in reversed(children):
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 20
            for name, proc in reversed(children):
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        if exit_code:
            raise CommandError(f"a component stopped (exit code {exit_code})")

    def first_user(self):
        """On a database with no accounts, make an administrator with a random password and print it
        once: every page needs a login, and this is the only way in that needs no extra step. The
        password is never written to disk; `manage.py changepassword admin` replaces it."""
        from django.contrib.auth import get_user_model

        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        self.stdout.write(
            self.style.WARNING(
                f"created the first account: user 'admin', password '{password}' (shown only now; "
                "change it with `manage.py changepassword admin`, add people in the admin)"
            )
        )
