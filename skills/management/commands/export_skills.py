from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from skills.markdown import export_skill_markdown
from skills.models import Skill


class Command(BaseCommand):
    help = "Write skills as markdown files (<name>.md, YAML front matter, the published ASPIRE section layout)."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="directory to write into (created if missing)")
        parser.add_argument(
            "--name",
            action="append",
            default=[],
            help="export only this skill (repeatable); the newest version with a matching status",
        )
        parser.add_argument(
            "--status",
            action="append",
            default=[],
            choices=Skill.Status.values,
            help="statuses to export (repeatable; default: approved)",
        )

    def handle(self, *args, **opts):
        statuses = opts["status"] or [Skill.Status.APPROVED]
        skills = Skill.objects.filter(status__in=statuses).select_related("parent").order_by("name", "-version")
        if opts["name"]:
            skills = skills.filter(name__in=opts["name"])
            missing = set(opts["name"]) - set(skills.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no {'/'.join(statuses)} skill named {', '.join(sorted(missing))}")
        out = Path(opts["out"])
        out.mkdir(parents=True, exist_ok=True)
        written = set()
        for skill in skills:
            if skill.name in written:
                continue
            (out / f"{skill.name}.md").write_text(export_skill_markdown(skill), encoding="utf-8")
            written.add(skill.name)
        self.stdout.write(f"wrote {len(written)} skill file(s) to {out}")
