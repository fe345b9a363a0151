"""A real ``manage.py up`` instance in a directory of its own, for tests (and fault scripts) that kill
things: its own ASPIRE_VAR_DIR (SQLite database, media, the private Redis's data), its own web port, its
own private Redis (REDIS_URL is taken out of its environment), started as a session of its own.

    with Instance(tmp_path) as inst:
        inst.start()
        run = inst.launch_run(seeds=[1, 2, 3, 4])
        inst.kill("worker")                      # SIGKILL the Celery worker's main process
        inst.wait_log("worker exited with code -9")
        inst.wait_run(run["id"])

``pids()`` gives the pids of ``up``, ``redis``, ``worker`` (the Celery main process) and ``web`` (Daphne),
read from the VAR_DIR/up.json that ``up`` keeps current. The API client authenticates with a token made
for a user of the instance's own database (``manage.py shell``). Everything ``up`` and its children print
goes to VAR_DIR/up.log (appended to across restarts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from aspire_web.localredis import free_port
from testing.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
FINAL = ("FINISHED", "FAILED", "CANCELLED")
#: Environment the test process may carry that must not reach the instance (it has its own of each).
NOT_INHERITED = ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "ASPIRE_MEDIA_ROOT", "ASPIRE_PORT")

_TOKEN_SCRIPT = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.get_or_create(username="instance-tester")
print("TOKEN", Token.objects.get_or_create(user=user)[0].key)
"""


class Instance:
    """One ``up`` in ``var_dir``. ``env`` adds to (or overrides) its environment; ``args`` are extra
    ``up`` arguments; ``grace`` None leaves ``--grace`` to its default (ASPIRE_STOP_GRACE, 60 s).
    :meth:`start` may be called again after :meth:`stop` (same directory, database and Redis data; a
    new web port unless ``port`` was given)."""

    def __init__(
        self,
        var_dir: Path,
        *,
        workers: int = 2,
        grace: float | None = 60,
        port: int | None = None,
        env: dict | None = None,
        args: list[str] | None = None,
    ):
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.workers, self.grace, self.fixed_port = workers, grace, port
        self.extra_env, self.extra_args = dict(env or {}), list(args or [])
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self._token: str | None = None
        self._log = None

    # -- life -------------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.var_dir / "up.log"

    @property
    def state_path(self) -> Path:
        return self.var_dir / "up.json"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(
            ASPIRE_VAR_DIR=str(self.var_dir),
            PYTHONUNBUFFERED="1",
            MUJOCO_GL=os.environ.get("MUJOCO_GL", "osmesa"),
            PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "osmesa"),
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 180) -> None:
        """Start ``up`` and wait until its worker and web server run and the web answers."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        try:
            self.state_path.unlink()
        except FileNotFoundError:
            pass
        self.port = self.fixed_port or free_port()
        cmd = [
            sys.executable,
            "manage.py",
            "up",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            *(["--grace", str(self.grace)] if self.grace is not None else []),
            "--no-first-user",
            *self.extra_args,
        ]
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n=== testing.instance: {' '.join(cmd[1:])}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"up exited with code {self.proc.returncode}:\n{self.log()[-3000:]}")
            pids = self.pids()
            return all(pids.get(k) for k in ("worker", "web")) and self.web_answers()

        wait_for(ready, timeout=timeout, interval=0.5)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120) -> tuple[int, float]:
        """Send ``sig`` to ``up`` and wait for it to exit: (exit code, seconds it took)."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        took = time.monotonic() - began
        self._close_log()
        return code, took

    def close(self) -> None:
        """Stop whatever is left: ``up`` (SIGINT, then SIGKILL), and any process of its session."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait((self.grace if self.grace is not None else 60) + 30)
            except subprocess.TimeoutExpired:
                pass
        self._kill_leftovers()
        self._close_log()

    def _kill_leftovers(self) -> None:
        # up's children lead their own sessions; they die with up (parent-death signal), and any that
        # a killed up left behind are named in the last up.json.
        pids = []
        if self.proc is not None:
            pids.append(self.proc.pid)
        try:
            pids += [p for p in json.loads(self.state_path.read_text())["children"].values() if p]
        except (OSError, ValueError, KeyError):
            pass
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.wait(10)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- processes --------------------------------------------------------------------------------------
    def state(self) -> dict:
        """VAR_DIR/up.json ({} while there is none)."""
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def pids(self) -> dict:
        """{"up", "redis", "worker", "web"} -> pid (None while that child is down or unknown)."""
        state = self.state()
        pids = {"up": self.proc.pid if self.proc is not None and self.proc.poll() is None else None}
        pids.update({k: None for k in ("redis", "worker", "web")})
        pids.update(state.get("children", {}))
        return pids

    def kill(self, component: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to one process ("up", "redis", "worker" — the Celery main process — or "web");
        returns its pid."""
        pid = self.pids()[component]
        assert pid, f"{component} is not running"
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, component: str, old_pid: int, timeout: float = 60) -> int:
        """The pid of ``component`` once ``up`` has started it again (a pid other than ``old_pid``)."""
        return wait_for(lambda: (p := self.pids()[component]) not in (None, old_pid) and p, timeout=timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text: str, timeout: float = 60, after: int = 0) -> str:
        """Wait until ``text`` appears in the log (past character ``after``); returns the log."""
        return wait_for(lambda: text in (log := self.log())[after:] and log, timeout=timeout)

    # -- the API ----------------------------------------------------------------------------------------
    def token(self) -> str:
        """An API token of a user of this instance's database (made once, by ``manage.py shell``)."""
        if self._token is None:
            out = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", _TOKEN_SCRIPT],
                cwd=ROOT,
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            lines = [line for line in out.stdout.splitlines() if line.startswith("TOKEN ")]
            assert lines, f"could not make a token: {out.stdout[-2000:]} {out.stderr[-2000:]}"
            self._token = lines[-1].split()[1]
        return self._token

    def request(self, method: str, path: str, body=None, token: bool = True, timeout: float = 15):
        """(HTTP status, decoded JSON or text) of ``method path`` on the web server."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Token {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def web_answers(self) -> bool:
        """Whether the web server answers a page request (any status under 500)."""
        try:
            return self.request("GET", "/api/", token=False, timeout=5)[0] < 500
        except OSError:
            return False

    def launch_run(self, task: str = "robosuite:Lift", seeds=(1, 2, 3, 4), **fields) -> dict:
        """Launch a run of the task's starter program (POST /api/runs/); its JSON."""
        status, body = self.request("POST", "/api/runs/", {"task": task, "seeds": list(seeds), **fields})
        assert status == 201, (status, body)
        return body

    def get_run(self, run_id: int) -> dict:
        status, body = self.request("GET", f"/api/runs/{run_id}/")
        assert status == 200, (status, body)
        return body

    def episodes(self, run_id: int) -> list[dict]:
        """Every episode row of the run (GET /api/episodes/?run=, all pages)."""
        out, path = [], f"/api/episodes/?run={run_id}&page_size=200"
        while path:
            status, body = self.request("GET", path)
            assert status == 200, (status, body)
            out += body["results"]
            nxt = body.get("next")
            path = nxt[len(self.url) :] if nxt and nxt.startswith(self.url) else nxt
            if path and path.startswith("http"):
                path = "/" + path.split("/", 3)[3]
        return out

    def wait_run(self, run_id: int, timeout: float = 240) -> dict:
        """The run once it reached a final state (FINISHED, FAILED, CANCELLED)."""

        def final():
            try:
                run = self.get_run(run_id)
            except OSError:  # the web server is restarting
                return None
            return run if run["status"] in FINAL else None

        return wait_for(final, timeout=timeout, interval=1.0)

    def wait_episodes(self, run_id: int, count: int = 1, timeout: float = 180) -> list[dict]:
        """The run's episodes once at least ``count`` of them have a result (not RUNNING)."""

        def done():
            try:
                eps = [e for e in self.episodes(run_id) if e["status"] not in ("RUNNING", "CANCELLED")]
            except OSError:
                return None
            return eps if len(eps) >= count else None

        return wait_for(done, timeout=timeout, interval=0.5)

    def wait_started(self, run_id: int, timeout: float = 180) -> list[dict]:
        """The run's episodes once the first one has started (a row exists, RUNNING or done)."""

        def started():
            try:
                return self.episodes(run_id) or None
            except OSError:
                return None

        return wait_for(started, timeout=timeout, interval=0.5)
