"""Run the main job: database set-up, a private Redis when REDIS_URL is unset, a Celery worker and the
ASGI web server (Daphne), supervised until Ctrl-C.

- A child that dies is restarted alone, with backoff (aspire_web.supervisor): the web server keeps
  answering while the worker or Redis restarts, and a private Redis comes back on the same port and data
  directory, so every URL handed out stays valid.
- The reconciler (runs.reconcile) runs once before the worker starts and then every 15 s in a thread of
  this process: work that lost its owner or its message (a worker or Redis that died) is sent again.
- Ctrl-C (or SIGTERM) stops gracefully: the worker gets a warm shutdown (it finishes the episodes it is
  running and takes no new ones) for up to ``--grace`` seconds (60; ASPIRE_STOP_GRACE), then whatever is
  left is killed, and the web server and Redis stop after it. Work not done is resumed at the next start.
  A second Ctrl-C skips the wait.

The pids of this process and of its children are kept in VAR_DIR/up.json while it runs (testing/instance.py
reads them; so can an operator).
"""

import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from aspire_web import localredis
from aspire_web.supervisor import Program, Supervisor, child_options

#: Seconds between two reconciler passes in ``up`` (the workers run their own, less often).
RECONCILE_EVERY_S = 15.0
#: Seconds the web server and Redis get to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 10.0


def _default_grace() -> float:
    try:
        return float(os.environ.get("ASPIRE_STOP_GRACE", 60))
    except ValueError:
        return 60.0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Command(BaseCommand):
    help = "Start web + worker (+ a private Redis when REDIS_URL is not set), supervised until Ctrl-C."

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
            "--grace",
            type=float,
            default=_default_grace(),
            help="seconds Ctrl-C waits for running episodes before killing the worker (default 60, "
            "env ASPIRE_STOP_GRACE); unfinished work is resumed at the next start",
        )
        parser.add_argument(
            "--no-first-user",
            action="store_true",
            help="do not create the first (admin) account on a database that has no users",
        )

    # -- output ---------------------------------------------------------------------------------------
    _say_lock = threading.Lock()

    def say(self, line: str, warning: bool = False) -> None:
        """One line of ``up``'s own log (stdout, flushed: the children write to the same stream)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self._say_lock:
            self.stdout.write(f"{stamp} up: {self.style.WARNING(line) if warning else line}")
            self.stdout.flush()

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

    # -- the job --------------------------------------------------------------------------------------
    def handle(self, *args, **opts):
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local"))
        env["PYTHONUNBUFFERED"] = "1"
        programs, redis_proc, redis_url = [], None, None
        if not os.environ.get("REDIS_URL"):
            # First, so that nothing this process does below (migrations, the catalog, the reconciler)
            # can reach a Redis other than its own.
            workdir = Path(settings.VAR_DIR) / "redis"
            port = opts["redis_port"] or localredis.free_port()
            try:
                redis_proc, redis_url = localredis.start(workdir, port, **child_options())
            except localredis.RedisUnavailable as exc:
                raise CommandError(str(exc)) from None
            point_at_redis(redis_url)
            env["REDIS_URL"] = redis_url
            self.say(f"started a private Redis at {redis_url} (data in {workdir})")
            programs.append(
                Program(
                    "redis",
                    lambda: localredis.start(workdir, port, **child_options())[0],
                    stop_timeout=STOP_TIMEOUT_S,
                )
            )
        try:
            self.prepare(opts)
        except BaseException:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(STOP_TIMEOUT_S)
            raise
        queues = sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *(q for q in settings.ASPIRE["QUEUES"].values() if q)})
        worker = worker_command(opts["workers"], queues)
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
        programs.append(Program("worker", spawn_of(worker, env), stop_timeout=opts["grace"]))
        programs.append(Program("web", spawn_of(web, env), stop_timeout=STOP_TIMEOUT_S))

        state_file = Path(settings.VAR_DIR) / "up.json"
        supervisor = Supervisor(programs, log=lambda line: self.say(line, warning=True))
        supervisor.on_change = lambda: write_state(state_file, supervisor, opts, redis_url)
        if redis_proc is not None:
            supervisor.adopt("redis", redis_proc)

        stop, force = threading.Event(), threading.Event()

        def on_signal(signum, frame):
            if stop.is_set():
                force.set()
                self.say("stopping now (second signal)")
            else:
                stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        reconciler = None
        try:
            self.reconcile_pass()  # before the worker takes anything: what died with the last instance
            if not stop.is_set():
                supervisor.start(["worker", "web"])
            self.say(
                f"ASPIRE web is up: http://{opts['host']}:{opts['port']}/  (Ctrl-C stops it; running episodes "
                f"get {opts['grace']:g} s to finish)"
            )
            reconciler = threading.Thread(target=self.reconcile_loop, args=(stop,), name="up-reconcile", daemon=True)
            reconciler.start()
            supervisor.run(stop)
        finally:
            stop.set()
            self.shut_down(supervisor, opts["grace"], force)
            if reconciler is not None:
                reconciler.join(timeout=5)
            try:
                state_file.unlink()
            except OSError:
                pass
            for s, handler in previous.items():
                signal.signal(s, handler)

    def prepare(self, opts):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_tasks", verbosity=0)
        call_command("load_seed_skills", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not opts["no_first_user"]:
            self.first_user()
        self.report_sandbox()

    def shut_down(self, supervisor: Supervisor, grace: float, force: threading.Event) -> None:
        """Worker first (warm shutdown, up to ``grace`` seconds), then the web server, then Redis (the
        worker's last acknowledgements and restored messages go to it)."""
        worker = supervisor.children["worker"]
        if worker.alive():
            rest = "the web server and Redis" if "redis" in supervisor.children else "the web server"
            self.say(
                f"stopping: the worker finishes its running episodes (at most {grace:g} s; Ctrl-C again "
                f"to stop now), then {rest} stop"
            )
        outcome = supervisor.stop(["worker", "web", "redis"], {"worker": grace}, force)
        if outcome.get("worker", "").startswith("killed"):
            self.say(f"the worker did not finish within {grace:g} s and was killed")
        runs, episodes = work_left()
        if runs is None:
            self.say("stopped (the database could not be read to count unfinished work)")
        elif runs:
            self.say(
                f"stopped; {runs} run{'s' if runs != 1 else ''} not finished, {episodes} "
                f"episode{'s' if episodes != 1 else ''} left to be resumed at the next start"
            )
        else:
            self.say("stopped; no unfinished work")

    # -- the reconciler -------------------------------------------------------------------------------
    _last_failure = None

    def reconcile_pass(self) -> None:
        """One reconciler pass; a summary line when it did something, one line (no traceback) when the
        database or the broker is unreachable, repeated only when the reason changes. Never raises."""
        from django.db import close_old_connections, connection

        try:
            close_old_connections()
            from runs.reconcile import reconcile

            counts = reconcile()
        except Exception as exc:
            line = _one_line(exc)
            if line != self._last_failure:
                self.say(f"reconcile failed: {line}", warning=True)
            self._last_failure = line
        else:
            if self._last_failure is not None:
                self.say("reconcile works again")
            self._last_failure = None
            done = {k: v for k, v in sorted(counts.items()) if v and k != "skipped"}
            if done:
                self.say("reconciled: " + ", ".join(f"{k} {v}" for k, v in done.items()))
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()

    def reconcile_loop(self, stop: threading.Event, every: float = RECONCILE_EVERY_S) -> None:
        while not stop.wait(every):
            try:
                self.reconcile_pass()
            except BaseException as exc:  # pragma: no cover - reconcile_pass already catches Exception
                self.say(f"reconcile failed: {_one_line(exc)}", warning=True)

    # -- accounts -------------------------------------------------------------------------------------
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


def worker_command(concurrency: int, queues: list[str]) -> list[str]:
    """The Celery worker. Without gossip and mingle: they only matter between several workers of one
    broker, and gossip's channel is what Celery 5.7 fails to close after a broker outage ("Error on
    restarting Gossip"); workers know each other through their heartbeats (runs.heartbeat)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "aspire_web",
        "worker",
        "-l",
        "INFO",
        "-c",
        str(concurrency),
        "-Q",
        ",".join(queues),
        "-n",
        "aspire@%h",
        "--without-gossip",
        "--without-mingle",
    ]


def spawn_of(cmd: list[str], env: dict):
    import subprocess

    return lambda: subprocess.Popen(cmd, env=env, **child_options())


def point_at_redis(url: str) -> None:
    """Make this process use the private Redis at ``url``: settings read later (the outbox, the
    reconciler's lock, the channel layer) and the Celery app's broker."""
    import copy

    os.environ["REDIS_URL"] = url
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    for layer in layers.values():
        for host in layer.get("CONFIG", {}).get("hosts", []):
            if isinstance(host, dict) and "address" in host:
                host["address"] = url
    settings.CHANNEL_LAYERS = layers
    from aspire_web.celery import app

    app.conf.broker_url = url


def write_state(path: Path, supervisor: Supervisor, opts: dict, redis_url: str | None) -> None:
    """VAR_DIR/up.json: this process's pid, the children's pids (null while one is down) and restarts."""
    state = {
        "pid": os.getpid(),
        "url": f"http://{opts['host']}:{opts['port']}/",
        "redis_url": redis_url,
        "children": supervisor.pids(),
        "restarts": {name: child.restarts for name, child in supervisor.children.items()},
        "stopping": supervisor.stopping,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def work_left() -> tuple[int | None, int]:
    """(active runs, episodes of active program runs without a result); (None, 0) when the database
    cannot be read."""
    from django.db import close_old_connections

    from runs.models import Run

    try:
        close_old_connections()
        active = list(Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING]))
        episodes = 0
        try:
            from runs.work import missing_work
        except ImportError:  # pragma: no cover - runs.work is part of the project
            missing_work = None
        for run in active:
            if missing_work is not None and run.kind == Run.Kind.PROGRAM:
                missing, running = missing_work(run)
                episodes += len(missing) + len(running)
        return len(active), episodes
    except Exception:
        return None, 0
