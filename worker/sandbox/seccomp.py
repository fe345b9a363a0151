"""Seccomp filters for the sandbox child, built on the host with libseccomp (PyPI ``pyseccomp``).

Two classic-BPF programs are compiled once per worker process:

* the **launch filter**, handed to bubblewrap with ``--seccomp FD``: bubblewrap installs it (with
  ``PR_SET_NO_NEW_PRIVS``) just before it executes the Python interpreter, so it must still allow
  ``execve`` that one time;
* the **program filter** = the launch filter plus ``execve``/``execveat``, installed by the child on
  itself after start-up and before it compiles the program (see ``child._install_seccomp``). Filters
  stack and a process can never remove one, so from the program's first line both hold.

Everything the filters refuse answers ``EPERM`` (``ENOSYS`` for ``clone3`` and ``openat2``, which makes
glibc fall back to calls the filter can inspect): the program sees an ``OSError``, the host sees
nothing unusual. Refused:

* socket creation (``socket``, ``socketpair``): no network, no unix sockets;
* process creation (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``, ``clone3``), and in the
  program filter ``execve``/``execveat``;
* reaching other processes (``ptrace``, ``process_vm_readv``/``writev``, ``kcmp``, ``pidfd_getfd``,
  ``process_madvise``);
* namespaces and mounts (``mount``, ``umount2``, ``unshare``, ``setns``, ``pivot_root``, ``chroot``
  and the new mount API);
* every path that writes or creates files: ``open``/``openat`` with any of ``O_WRONLY``, ``O_RDWR``,
  ``O_CREAT``, ``O_TRUNC``, ``O_APPEND``; ``creat``, ``mkdir*``, ``mknod*``, ``unlink*``, ``rmdir``,
  ``rename*``, ``link*``, ``symlink*``, ``truncate``, ``ftruncate``, ``fallocate``, ``chmod``/``chown``
  families, ``utime*``, extended attributes, ``memfd_create``, ``open_by_handle_at``;
* kernel surfaces a program never needs (``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``,
  keyrings, modules, ``kexec``, ``reboot``, ``swapon``, ``acct``, clock and host name setters,
  ``personality``, ``iopl``/``ioperm``).

Everything else is allowed: reading the few files bound into the sandbox, writing to the two pipes
that are already open, memory management, signals within the sandbox's own pid namespace.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

#: Flag bits of open/openat that write, create or truncate (x86-64 and aarch64 values agree).
_WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)
CLONE_THREAD = 0x00010000

_SOCKETS = ("socket", "socketpair")
_PROCESSES = ("fork", "vfork")
_OTHER_PROCESSES = ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise")
_NAMESPACES = (
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
)
_FILE_WRITES = (
    "creat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "ftruncate",
    "fallocate",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "memfd_create",
    "memfd_secret",
    "open_by_handle_at",
    "name_to_handle_at",
    "mq_open",
    "quotactl",
)
_KERNEL = (
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "personality",
    "iopl",
    "ioperm",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "fanotify_init",
    "open_tree_attr",
)
_EXEC = ("execve", "execveat")


class SeccompUnavailable(RuntimeError):
    """libseccomp or its Python binding is missing, or the filter could not be compiled."""


def _add(flt, action, name, *args):
    import pyseccomp as sc

    try:
        flt.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):
        # A name this kernel/libseccomp does not know (e.g. memfd_secret on an old libseccomp): the
        # syscall cannot be made through this ABI either, so there is nothing to refuse.
        try:
            known = sc.resolve_syscall(sc.system_arch(), name) >= 0
        except Exception:
            known = False
        if known:
            raise


def _compile(deny_exec: bool) -> bytes:
    try:
        import pyseccomp as sc
    except Exception as exc:  # ImportError, or OSError when libseccomp.so.2 is missing
        raise SeccompUnavailable(f"the seccomp binding cannot load: {exc}") from None
    eperm = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(sc.ALLOW)
    for name in _SOCKETS + _PROCESSES + _OTHER_PROCESSES + _NAMESPACES + _FILE_WRITES + _KERNEL:
        _add(flt, eperm, name)
    if deny_exec:
        for name in _EXEC:
            _add(flt, eperm, name)
    # Threads (clone with CLONE_THREAD) stay possible; a new process does not.
    _add(flt, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    _add(flt, sc.ERRNO(errno.ENOSYS), "clone3")
    _add(flt, sc.ERRNO(errno.ENOSYS), "openat2")
    for bit in _WRITE_FLAGS:
        _add(flt, eperm, "openat", sc.Arg(2, sc.MASKED_EQ, bit, bit))
        _add(flt, eperm, "open", sc.Arg(1, sc.MASKED_EQ, bit, bit))
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


@functools.lru_cache(maxsize=2)
def bpf(deny_exec: bool) -> bytes:
    """The compiled filter as raw ``struct sock_filter`` instructions (8 bytes each), cached.

    ``deny_exec=False`` is the launch filter for ``bwrap --seccomp``; ``True`` the program filter.
    Raises :class:`SeccompUnavailable`.
    """
    try:
        return _compile(deny_exec)
    except SeccompUnavailable:
        raise
    except Exception as exc:
        raise SeccompUnavailable(f"the seccomp filter could not be built: {type(exc).__name__}: {exc}") from None
