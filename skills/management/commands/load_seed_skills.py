from django.core.management.base import BaseCommand, CommandError

from skills.services import SeedError, install_seed_skills


class Command(BaseCommand):
    help = "Load the seed skill library (skills/seed/*.md) as approved skills. Safe to run again."

    def handle(self, *args, **opts):
        try:
            report = install_seed_skills()
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
