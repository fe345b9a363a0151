from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from skills.exchange import SEED_DIR, SeedError, install_seed_skills


class Command(BaseCommand):
    help = "Load the seed skill library (skills/seed/*.md) as approved skills. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir", default=str(SEED_DIR), help="directory of seed markdown files (default: the shipped library)"
        )

    def handle(self, *args, **opts):
        directory = Path(opts["dir"])
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        try:
            report = install_seed_skills(directory)
        except SeedError as exc:
            raise CommandError(str(exc)) from None
        if not opts["verbosity"]:
            return
        self.stdout.write(
            f"seed skills: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped"
        )
        for line in report.skipped:
            self.stdout.write(f"  skipped {line}")
