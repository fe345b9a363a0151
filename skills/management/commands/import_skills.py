from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from skills.content import SkillInputError
from skills.exchange import import_skill_markdown
from skills.markdown import SkillFormatError
from skills.models import Skill


class Command(BaseCommand):
    help = (
        "Import markdown skill files as proposed skills; they go through admission (the API-policy "
        "check at once, re-execution once they carry programs and seeds)."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help=".md files or directories holding them")
        parser.add_argument("--kind", default="", help="kind for files whose front matter has none")
        parser.add_argument("--by", default="", help="who proposes them (default: the file name)")

    def handle(self, *args, **opts):
        files = []
        for raw in opts["paths"]:
            path = Path(raw)
            if path.is_dir():
                files.extend(sorted(path.rglob("*.md")))
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{path} does not exist")
        failures = 0
        for path in files:
            try:
                skill = import_skill_markdown(
                    path.read_text(encoding="utf-8"),
                    default_kind=opts["kind"],
                    proposed_by=opts["by"] or f"import of {path.name}",
                )
            except (SkillFormatError, SkillInputError, UnicodeDecodeError) as exc:
                failures += 1
                self.stderr.write(f"{path}: not imported: {exc}")
                continue
            note = "" if skill.status == Skill.Status.PROPOSED else f": {skill.status_reason.splitlines()[0]}"
            self.stdout.write(f"{path}: {skill} {skill.status}{note}")
        if failures:
            raise CommandError(f"{failures} of {len(files)} file(s) could not be imported")
