"""The OS boundary around the sandbox child: bubblewrap namespaces, seccomp, limits set from outside.

The design assumes the program has already won full Python inside its process (a deny-list in Python
always has another hole), so the process must hold nothing worth having. On Linux the child runs as

    prlimit <limits> bwrap <namespaces, binds> --seccomp FD <python> -I -S -B /sandbox/child.py R W /sandbox/lib

* **Namespaces** (``--unshare-user --unshare-pid --unshare-net --unshare-ipc --unshare-uts``, plus the
  cgroup namespace where the kernel has it): uid/gid 65534 inside, every capability dropped, its own pid
  1 (the host's processes, their ``/proc/<pid>/environ`` and ``/proc/<pid>/mem`` do not exist for it),
  a network namespace with only a downed loopback, ``--die-with-parent`` (the sandbox dies with the
  worker) and ``--new-session`` (no terminal injection).
* **Filesystem**: an empty tmpfs root with read-only binds of only what the child imports: the system
  shared libraries (``/usr/lib``, ``/usr/lib64``, ``/etc/ld.so.cache``), the Python installation (the
  interpreter and its standard library), the virtual environment's ``numpy``, ``msgpack`` and ``scipy``
  (with their bundled ``*.libs``) under ``/sandbox/lib``, and the sandbox modules (with the status
  vocabulary) under ``/sandbox``. No project directory, no ``var/`` (database, secret key, media), no home, no
  ``/usr/bin`` (no shell to run), a private tmpfs ``/tmp``, a minimal ``/dev`` and a ``/proc`` of the
  sandbox's own pid namespace.
* **Environment**: cleared (``--clearenv``); only the thread-count variables are set.
* **Seccomp** (:mod:`worker.sandbox.seccomp`): installed by bubblewrap before it executes Python, and a
  second, stricter filter (no ``execve``) installed by the child before it compiles the program.
* **Limits the child cannot lift**, set by ``prlimit`` before bubblewrap executes, inherited by the
  child: address space (the run's ``memory_mb``), CPU seconds, no core files, file size 0, 64 open
  files. Where ``ASPIRE_SANDBOX_CGROUP`` names a delegated cgroup v2 directory, each episode also gets
  its own child cgroup with ``memory.max`` and ``pids.max`` (see :class:`CgroupLimits`).

``ASPIRE_SANDBOX`` selects the mode: ``bwrap`` (the default) or ``process``. In ``bwrap`` mode a
machine where bubblewrap or seccomp cannot start refuses to run programs and says why (the episode ends
``SANDBOX_UNAVAILABLE``); ``process`` must be chosen explicitly and runs the child as a plain process
(limits and the child-installed seccomp filter still apply when they can), and every episode it runs is
recorded as not contained (``Containment.label``), which pages and the API show.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass

from . import seccomp

SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__))
#: Modules the child imports, bound read-only under /sandbox (the status vocabulary comes from worker/robot).
CHILD_MODULES = {
    name: os.path.join(SANDBOX_DIR, name) for name in ("child.py", "codec.py", "policy.py", "namespace.py")
} | {"status.py": os.path.join(os.path.dirname(SANDBOX_DIR), "robot", "status.py")}
#: Third-party packages the child imports, bound read-only under /sandbox/lib. scipy is imported only when
#: a program imports scipy.spatial.transform (and left out if it is not installed).
CHILD_PACKAGES = ("numpy", "msgpack", "scipy")
INSIDE_DIR = "/sandbox"
INSIDE_LIB = "/sandbox/lib"
SANDBOX_UID = 65534
MAX_OPEN_FILES = 64

MODE_ENV = "ASPIRE_SANDBOX"
CGROUP_ENV = "ASPIRE_SANDBOX_CGROUP"
BWRAP = "bwrap"
PROCESS = "process"
#: What an episode records as its ``sandbox``.
BWRAP_LABEL = "bwrap+seccomp"
PROCESS_LABEL = "process (not contained)"

#: The child's whole environment in either mode.
CHILD_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class SandboxUnavailable(RuntimeError):
    """Containment was asked for (the default) but cannot start on this machine; the text says why."""


@dataclass(frozen=True)
class Containment:
    """How episodes are isolated on this worker.

    ``mode`` is ``bwrap`` or ``process``; ``contained`` is True only for ``bwrap`` with seccomp;
    ``label`` is what an episode records (``"bwrap+seccomp"`` or ``"process (not contained)"``);
    ``detail`` says what was found (versions, cgroup); ``cgroup`` is the delegated cgroup v2 directory
    used for per-episode limits, or ``""``.
    """

    mode: str
    contained: bool
    label: str
    detail: str
    cgroup: str = ""


def configured_mode() -> str:
    mode = (os.environ.get(MODE_ENV) or BWRAP).strip().lower()
    if mode not in (BWRAP, PROCESS):
        raise SandboxUnavailable(f"{MODE_ENV}={mode!r} is not a sandbox mode; use '{BWRAP}' (default) or '{PROCESS}'")
    return mode


def _real_python() -> str:
    return os.path.realpath(sys.executable)


def _python_binds() -> list[str]:
    """Host paths of the interpreter and its standard library (read-only binds at the same path)."""
    prefix = os.path.realpath(sys.base_prefix)
    if prefix not in ("/usr", "/usr/local"):
        return [prefix]  # a self-contained installation (pyenv, conda, /opt/python): bind it whole
    paths = sysconfig.get_paths()
    binds = [_real_python(), paths["stdlib"], paths["platstdlib"]]
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    binds += glob.glob(os.path.join(libdir, "libpython*.so*")) if libdir and not libdir.startswith("/usr/lib") else []
    return list(dict.fromkeys(os.path.realpath(p) for p in binds if os.path.exists(p)))


@functools.lru_cache(maxsize=1)
def _package_dirs() -> tuple[tuple[str, str], ...]:
    """(host path, inside path) for each of :data:`CHILD_PACKAGES` and its bundled libraries.

    Found without importing them (scipy takes 0.2 s to import); numpy and msgpack are required.
    """
    pairs = []
    for name in CHILD_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            if name == "scipy":
                continue
            raise SandboxUnavailable(f"{name} is not installed in the worker's environment")
        pkg = os.path.dirname(os.path.realpath(spec.origin))
        pairs.append((pkg, f"{INSIDE_LIB}/{os.path.basename(pkg)}"))
        libs = pkg + ".libs"  # manylinux wheels keep their shared libraries beside the package
        if os.path.isdir(libs):
            pairs.append((libs, f"{INSIDE_LIB}/{os.path.basename(libs)}"))
    return tuple(pairs)


def bwrap_argv(seccomp_fd: int) -> list[str]:
    """bubblewrap's arguments up to (not including) the command it runs."""
    argv = [
        shutil.which(BWRAP) or BWRAP,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    for key, value in CHILD_ENV.items():
        argv += ["--setenv", key, value]
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32"):
        if os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for link, target in (("/lib", "usr/lib"), ("/lib64", "usr/lib64")):
        if os.path.isdir("/usr/" + target[4:]):
            argv += ["--symlink", target, link]
    if os.path.exists("/etc/ld.so.cache"):
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for path in _python_binds():
        if not path.startswith("/usr/lib"):
            argv += ["--ro-bind", path, path]
    for host_path, inside in _package_dirs():
        argv += ["--ro-bind", host_path, inside]
    for name, host_path in CHILD_MODULES.items():
        argv += ["--ro-bind", host_path, f"{INSIDE_DIR}/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp", "--seccomp", str(seccomp_fd)]
    return argv


def prlimit_argv(memory_mb: int, cpu_seconds: int, file_bytes: int = 0) -> list[str]:
    """``prlimit`` (util-linux) sets the limits on itself and executes the rest of the command.

    ``file_bytes`` caps any file the process writes (RLIMIT_FSIZE); the only one it holds open for
    writing is its stderr, a host temp file.
    """
    mem = int(memory_mb) * 1024 * 1024
    return [
        shutil.which("prlimit") or "prlimit",
        f"--as={mem}",
        f"--cpu={int(cpu_seconds)}:{int(cpu_seconds) + 5}",
        "--core=0",
        f"--fsize={int(file_bytes)}",
        f"--nofile={MAX_OPEN_FILES}",
        "--memlock=0",
        "--",
    ]


@dataclass
class CgroupLimits:
    """A per-episode child cgroup of a delegated cgroup v2 directory (``ASPIRE_SANDBOX_CGROUP``).

    ``memory.max`` gets the run's memory cap and ``pids.max`` a handful of tasks; the launcher moves
    itself in (``echo $$ > cgroup.procs``) before it executes prlimit and bubblewrap, so every process
    of the episode is inside. Removed after the episode.
    """

    root: str
    memory_mb: int
    pids: int = 8
    path: str = ""

    def create(self) -> str:
        self.path = os.path.join(self.root, f"aspire-episode-{uuid.uuid4().hex[:12]}")
        os.mkdir(self.path)
        with open(os.path.join(self.path, "memory.max"), "w") as fh:
            fh.write(str(int(self.memory_mb) * 1024 * 1024))
        with open(os.path.join(self.path, "pids.max"), "w") as fh:
            fh.write(str(self.pids))
        return self.path

    def launcher(self) -> list[str]:
        procs = os.path.join(self.path, "cgroup.procs")
        return ["/bin/sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "aspire-sandbox", procs]

    def remove(self) -> None:
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def _cgroup_root() -> str:
    root = os.environ.get(CGROUP_ENV, "").strip()
    if not root:
        return ""
    if not (os.path.isfile(os.path.join(root, "cgroup.procs")) and os.access(root, os.W_OK)):
        raise SandboxUnavailable(f"{CGROUP_ENV}={root} is not a writable cgroup v2 directory")
    controllers = open(os.path.join(root, "cgroup.subtree_control")).read().split()
    missing = {"memory", "pids"} - set(controllers)
    if missing:
        raise SandboxUnavailable(
            f"{CGROUP_ENV}={root} does not delegate the {', '.join(sorted(missing))} "
            "controller(s) to its children (write +memory +pids to cgroup.subtree_control)"
        )
    return root


def _probe_bwrap() -> str:
    """Start a trivial sandbox exactly as episodes do; return bubblewrap's version or raise."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"OS containment needs Linux (bubblewrap); this is {sys.platform}")
    if not shutil.which(BWRAP):
        raise SandboxUnavailable(
            "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; scripts/install.sh installs it)"
        )
    if not shutil.which("prlimit"):
        raise SandboxUnavailable("prlimit (util-linux) is not installed")
    try:
        bpf = seccomp.bpf(False)
        seccomp.bpf(True)
    except seccomp.SeccompUnavailable as exc:
        raise SandboxUnavailable(f"{exc} (Debian/Ubuntu: apt-get install libseccomp2; pip install pyseccomp)") from None
    r, w = os.pipe()
    try:
        os.write(w, bpf)
        os.close(w)
        w = -1
        probe = "import numpy, msgpack, sys; sys.stdout.write('ok')"
        cmd = (
            prlimit_argv(1024, 10)
            + bwrap_argv(r)
            + [_real_python(), "-I", "-S", "-B", "-c", f"import sys; sys.path.insert(0, {INSIDE_LIB!r}); {probe}"]
        )
        proc = subprocess.run(cmd, pass_fds=(r,), env=CHILD_ENV, capture_output=True, timeout=30, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"bubblewrap could not be started: {exc}") from None
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    if proc.returncode != 0 or proc.stdout != "ok":
        why = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        hint = ""
        if any(word in why[0] for word in ("new namespace", "uid map", "Operation not permitted", "No permissions")):
            hint = (
                " (this machine does not allow the user namespaces bubblewrap needs; check "
                "kernel.unprivileged_userns_clone or the AppArmor userns restriction)"
            )
        raise SandboxUnavailable(f"bubblewrap cannot start the sandbox: {why[0]}{hint}")
    version = subprocess.run([shutil.which(BWRAP), "--version"], capture_output=True, text=True).stdout.strip()
    return version or "bubblewrap"


@functools.lru_cache(maxsize=1)
def _detect(mode: str) -> Containment:
    if mode == PROCESS:
        try:
            seccomp.bpf(True)
            extra = "child-installed seccomp filter"
        except seccomp.SeccompUnavailable:
            extra = "no seccomp"
        return Containment(
            PROCESS,
            False,
            PROCESS_LABEL,
            f"{MODE_ENV}=process: a plain child process with rlimits and {extra}; "
            "no namespaces, the program can read what the worker's user can",
        )
    version = _probe_bwrap()
    cgroup = _cgroup_root()
    limits = f"cgroup v2 memory.max/pids.max under {cgroup}" if cgroup else "rlimits only (no delegated cgroup v2)"
    return Containment(
        BWRAP,
        True,
        BWRAP_LABEL,
        f"{version}; user/pid/net/ipc/uts namespaces, uid {SANDBOX_UID}, no capabilities, seccomp, {limits}",
        cgroup,
    )


def current() -> Containment:
    """The containment this worker uses (probed once per process). Raises :class:`SandboxUnavailable`."""
    return _detect(configured_mode())


def reset_cache() -> None:
    """Forget the probe (tests switch ``ASPIRE_SANDBOX``)."""
    _detect.cache_clear()
