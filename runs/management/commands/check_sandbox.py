"""Check on this machine that robot programs are contained: run the escape probes and print pass/fail.

    python manage.py check_sandbox

Each probe is a program with full Python (no policy check) trying one way out: reading a canary file,
the database, the secret key and media; the worker's environment; writing under the project and /tmp;
connecting to a listener on 127.0.0.1; leaving a process behind; signalling the worker; reading its
memory. Exit status 0 when every probe is refused, 1 otherwise (or when the sandbox cannot start).
Run it on an idle worker machine.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs.storage import local_media_root
from worker.sandbox import containment, probes


def _readable_targets() -> list[str]:
    paths = [settings.VAR_DIR / "secret_key", settings.BASE_DIR / "manage.py"]
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        paths.append(Path(db["NAME"]))
    media = local_media_root()  # None with an object store: no media file is on this machine to probe
    if media is not None and media.is_dir():
        paths += [p for p in list(media.rglob("*"))[:50] if p.is_file()][:1]
    return [str(p) for p in paths if Path(p).is_file()]


class Command(BaseCommand):
    help = "Run the sandbox escape probes under this worker's containment and print pass/fail for each."

    def handle(self, *args, **opts):
        try:
            box = containment.current()
        except containment.SandboxUnavailable as exc:
            raise CommandError(f"FAIL: the sandbox cannot start: {exc}") from None
        self.stdout.write(f"sandbox: {box.label} — {box.detail}")
        if not box.contained:
            raise CommandError(
                "FAIL: ASPIRE_SANDBOX=process runs programs without OS containment; "
                "the probes are not run (some would signal this process)"
            )
        write_dirs = [str(settings.BASE_DIR), str(settings.VAR_DIR)]
        results = probes.run_probes(
            read_paths=_readable_targets(), write_dirs=[d for d in write_dirs if Path(d).is_dir()]
        )
        for result in results:
            self.stdout.write(f"{'pass' if result.passed else 'FAIL'}  {result.name}: {result.detail}")
        failed = [r for r in results if not r.passed]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} checks failed: programs are NOT contained")
        self.stdout.write(self.style.SUCCESS(f"all {len(results)} checks passed: programs are contained"))
