"""Escape probes: programs that assume the attacker already won Python, run under the OS boundary alone.

Each probe is a real-Python program (run with ``python_policy=False``: real builtins, real ``os``,
``socket``, ``ctypes``) that tries one way out and prints ``ESCAPED: <what>`` if it got anywhere, or
``blocked: <what>`` per attempt. The host then checks what the program cannot fake: the canary files
were not written, the loopback listener saw no connection, no sandbox process outlived its episode,
the worker is alive. Used by ``manage.py check_sandbox`` and by the containment tests.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import containment
from .host import SandboxLimits, Status, run_program

API = [{"name": "noop", "doc": "does nothing"}]
CANARY_ENV = "ASPIRE_SANDBOX_CANARY"


def _noop(name, args, kwargs, line, stack):
    return None


@dataclass
class ProbeResult:
    name: str
    passed: bool
    detail: str
    status: str = ""
    stdout: str = ""


@dataclass
class Targets:
    """What the probes try to reach: files to read, places to write, a listener, the worker's pid."""

    read_paths: list[str]
    write_paths: list[str]
    secret: str
    port: int
    host_pid: int
    accepted: list = field(default_factory=list)


_READ = r"""
import os
hits = []
for path in {paths!r}:
    try:
        with open(path, "rb") as fh:
            data = fh.read(64)
        hits.append(path)
    except OSError as exc:
        print("blocked: read", path, exc.errno)
for path in hits:
    print("ESCAPED: read", path)
"""

_ENVIRON = r"""
import os
found = False
for entry in os.listdir("/proc"):
    if entry.isdigit() or entry == "self":
        try:
            data = open(f"/proc/{{entry}}/environ", "rb").read()
        except OSError:
            continue
        if {secret!r}.encode() in data:
            print("ESCAPED: secret in /proc/%s/environ" % entry)
            found = True
if {secret!r} in repr(dict(os.environ)):
    print("ESCAPED: secret in own environment")
elif not found:
    print("blocked: no process environment holds the worker's secret")
"""

_WRITE = r"""
import os
for path in {paths!r}:
    for how in ("open", "os.open", "mkdir", "symlink"):
        try:
            if how == "open":
                open(path, "w").write("x")
            elif how == "os.open":
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            elif how == "mkdir":
                os.mkdir(path)
            else:
                os.symlink("/etc/passwd", path)
            print("ESCAPED: wrote", how, path)
        except OSError as exc:
            print("blocked: write", how, path, exc.errno)
import mmap
try:
    m = mmap.mmap(-1, 4096)
    m.write(b"anonymous memory is fine")
    fd = os.open("/proc/self/exe", os.O_RDONLY)
    mapped = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_WRITE)
    print("ESCAPED: writable shared mapping of a file")
except (OSError, ValueError) as exc:
    print("blocked: shared file mapping", exc)
"""

_SOCKET = r"""
import socket
try:
    s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
    s.sendall(b"escaped")
    print("ESCAPED: connected to the host's loopback")
except OSError as exc:
    print("blocked: connect", exc.errno)
for family, kind in ((socket.AF_UNIX, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM)):
    try:
        socket.socket(family, kind)
        print("ESCAPED: created a socket", family)
    except OSError as exc:
        print("blocked: socket", family, exc.errno)
"""

_PROCESS = r"""
import os, subprocess, sys, time
try:
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    print("ESCAPED: forked", pid)
except OSError as exc:
    print("blocked: fork", exc.errno)
for argv in (["/bin/sh", "-c", "sleep 60"], [sys.executable, "-c", "import time; time.sleep(60)"]):
    try:
        subprocess.Popen(argv, start_new_session=True)
        print("ESCAPED: spawned", argv[0])
    except OSError as exc:
        print("blocked: spawn", argv[0], exc.errno)
try:
    os.execv(sys.executable, [sys.executable, "-c", "pass"])
except OSError as exc:
    print("blocked: exec", exc.errno)
"""

_SIGNAL = r"""
import os, signal
for pid in ({host_pid}, os.getppid()):
    try:
        os.kill(pid, signal.SIGKILL)
        print("sent", pid)
    except OSError as exc:
        print("blocked: kill", pid, exc.errno)
try:
    os.kill(-1, signal.SIGKILL)
except OSError as exc:
    print("blocked: kill -1", exc.errno)
print("blocked: the program is still running, so nothing it could signal was the host")
"""

_MEMORY = r"""
import os
for path in ("/proc/{host_pid}/mem", "/proc/{host_pid}/environ"):
    try:
        fd = os.open(path, os.O_RDONLY)
        os.lseek(fd, 4096, 0)
        os.read(fd, 16)
        print("ESCAPED: read", path)
    except OSError as exc:
        print("blocked:", path, exc.errno)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, call in (("ptrace attach", lambda: libc.ptrace(16, {host_pid}, 0, 0)),
                   ("unshare", lambda: libc.unshare(0x10000000)),
                   ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))):
    if call() == 0:
        print("ESCAPED:", name)
    else:
        print("blocked:", name, ctypes.get_errno())
"""

PROBES = {
    "read canary, database, secret key and media files": _READ,
    "read the worker's environment (API keys)": _ENVIRON,
    "write or create files under the project and /tmp": _WRITE,
    "connect to a listener on 127.0.0.1, create sockets": _SOCKET,
    "create a process that outlives the episode": _PROCESS,
    "signal the worker": _SIGNAL,
    "read the worker's memory, ptrace, unshare, mount": _MEMORY,
}


def _listener(targets: Targets, stop: threading.Event) -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    targets.port = srv.getsockname()[1]

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            targets.accepted.append(conn.recv(64))
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv


def _parents(pid: int) -> list[int]:
    """The chain of parent pids of ``pid`` up to (not including) pid 0, read from /proc; [] if it is gone."""
    chain = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the parenthesised command name
        chain.append(pid)
    return chain


def _sandbox_pids() -> set[int]:
    """Sandbox child processes that this process is answerable for: its own descendants, and orphans
    re-parented to init or to one of its ancestors (where a program that escaped by forking away would
    end up). Sandbox children of other process trees on the same machine (a worker pool running its own
    episodes meanwhile) are not counted."""
    me = os.getpid()
    mine = {me, 0, 1, *_parents(me)}
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"child.py" in cmd and (b"/sandbox/" in cmd or containment.SANDBOX_DIR.encode() in cmd):
                chain = _parents(int(entry.name))
                if me in chain or all(p in mine for p in chain):
                    pids.add(int(entry.name))
    return pids


def _judge(name: str, out, targets: Targets) -> ProbeResult:
    lines = out.stdout.splitlines()
    escaped = [line for line in lines if line.startswith("ESCAPED")]
    if escaped:
        return ProbeResult(name, False, "; ".join(escaped)[:500], out.status, out.stdout)
    if out.status != Status.OK or not any(line.startswith("blocked") for line in lines):
        return ProbeResult(name, False, f"ended {out.status}: {out.error[:300]}", out.status, out.stdout)
    return ProbeResult(
        name, True, f"{sum(line.startswith('blocked') for line in lines)} attempts refused", out.status, out.stdout
    )


def run_probes(read_paths: list[str] = (), write_dirs: list[str] = (), wall_seconds: float = 20.0) -> list[ProbeResult]:
    """Run every probe under this worker's containment; return one result per probe plus host checks.

    ``read_paths`` are extra files the program must not read (the database, the secret key, media);
    ``write_dirs`` directories it must not create files in (the project, ``var/``). A canary file in a
    fresh directory under the host's /tmp is always added, and a secret placed in this process's
    environment for the duration. Run it on an idle worker: the survivor check counts sandbox processes.
    Raises SandboxUnavailable unless this worker runs contained: in ``process`` mode the probes that
    signal every process would hit the worker itself.
    """
    box = containment.current()
    if not box.contained:
        raise containment.SandboxUnavailable(f"the probes need the OS sandbox; this worker runs {box.label}")
    secret = "canary-" + secrets.token_hex(16)
    canary_dir = tempfile.mkdtemp(prefix="aspire-canary-")
    canary = os.path.join(canary_dir, "canary.txt")
    Path(canary).write_text(secret)
    stamp = secrets.token_hex(4)
    writes = [os.path.join(d, f"sandbox-write-probe-{stamp}") for d in [canary_dir, "/tmp", *write_dirs]]
    targets = Targets([canary, *read_paths], writes, secret, 0, os.getpid())
    stop = threading.Event()
    srv = _listener(targets, stop)
    before = _sandbox_pids()
    saved = os.environ.get(CANARY_ENV)
    os.environ[CANARY_ENV] = secret
    results = []
    try:
        for name, template in PROBES.items():
            source = template.format(
                paths=targets.write_paths if template is _WRITE else targets.read_paths,
                secret=secret,
                port=targets.port,
                host_pid=targets.host_pid,
            )
            out = run_program(
                source, API, _noop, SandboxLimits(wall_seconds=wall_seconds, memory_mb=512), python_policy=False
            )
            results.append(_judge(name, out, targets))
        time.sleep(0.3)
    finally:
        stop.set()
        srv.close()
        if saved is None:
            os.environ.pop(CANARY_ENV, None)
        else:
            os.environ[CANARY_ENV] = saved
    written = [p for p in writes if os.path.lexists(p)]
    results.append(
        ProbeResult(
            "host check: no file was created",
            not written,
            "created: " + ", ".join(written) if written else "none of the write targets exists",
        )
    )
    results.append(
        ProbeResult(
            "host check: the loopback listener saw no connection",
            not targets.accepted,
            f"{len(targets.accepted)} connection(s)" if targets.accepted else "no connection",
        )
    )
    survivors = _sandbox_pids() - before
    results.append(
        ProbeResult(
            "host check: no sandbox process outlived its episode",
            not survivors,
            f"still running: {sorted(survivors)}" if survivors else "none left",
        )
    )
    after = run_program("noop()\nprint('next episode ok')", API, _noop, SandboxLimits(wall_seconds=wall_seconds))
    results.append(
        ProbeResult(
            "host check: the worker is alive and the next episode is normal",
            after.status == Status.OK and "next episode ok" in after.stdout,
            f"{after.status} {after.error[:200]}",
        )
    )
    for path in writes:
        if os.path.lexists(path):
            (os.rmdir if os.path.isdir(path) and not os.path.islink(path) else os.unlink)(path)
    os.unlink(canary)
    os.rmdir(canary_dir)
    return results
