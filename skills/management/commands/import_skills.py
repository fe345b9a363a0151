from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from skills.exchange import import_skill_paths


class Command(BaseCommand):
    help = (
        "Import markdown skill files, or whole folders of them (recursively; published ASPIRE skill folders "
        "included), as proposed skills; they go through admission (the API-policy check at once, "
        "re-execution once they carry programs and seeds). One line per file; exits non-zero only when a "
        "skill file could not be imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help=".md files or folders holding them (walked recursively)")
        parser.add_argument(
            "--kind", default="", help="kind for files whose front matter has none (default: inferred, or blank)"
        )
        parser.add_argument("--by", default="", help="who proposes them (default: the file's path)")

    def handle(self, *args, **opts):
        try:
            outcomes = import_skill_paths(
                [Path(raw) for raw in opts["paths"]], proposed_by=opts["by"], default_kind=opts["kind"]
            )
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        for outcome in outcomes:
            (self.stderr if outcome.error else self.stdout).write(outcome.describe())
        failed = sum(1 for o in outcomes if o.error)
        imported = sum(1 for o in outcomes if o.skill is not None and not o.unchanged)
        unchanged = sum(1 for o in outcomes if o.unchanged)
        skipped = sum(1 for o in outcomes if o.skipped)
        self.stdout.write(f"imported {imported}, unchanged {unchanged}, skipped {skipped}, not imported {failed}")
        if failed:
            raise CommandError(f"{failed} of {failed + imported + unchanged} file(s) could not be imported")
