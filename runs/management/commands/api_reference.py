"""Print the robot API reference, generated from the primitives' own docstrings."""

from django.core.management.base import BaseCommand, CommandError

from worker.robot.api import api_reference_markdown
from worker.robot.primitive import NATIVE, PROFILES
from worker.sim.catalog import get_task


class Command(BaseCommand):
    help = "Print the robot API reference (markdown) for a task's number of arms."

    def add_arguments(self, parser):
        parser.add_argument("--task", default="robosuite:Lift", help="task key; decides which arm variants are listed")
        parser.add_argument("--aliases", action="store_true", help="also list the published-API alias names")
        parser.add_argument(
            "--profile",
            choices=PROFILES,
            default=NATIVE,
            help="native (default) or published: the CaP-X / ASPIRE reduced API's forms and functions",
        )

    def handle(self, *args, **opts):
        try:
            spec = get_task(opts["task"])
        except KeyError as exc:
            raise CommandError(str(exc.args[0])) from None
        self.stdout.write(api_reference_markdown(spec.arms, include_aliases=opts["aliases"], profile=opts["profile"]))
