"""Reconcile once: relay the outbox, reset episodes whose worker died, re-send lost work, finish what is
done (runs.reconcile), and print what it did.

python manage.py reconcile [--json]
"""

import json

from django.core.management.base import BaseCommand

from runs.reconcile import reconcile


class Command(BaseCommand):
    help = "Re-queue work without a live owner and finish runs whose work is done (one reconciler pass)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")

    def handle(self, *args, **opts):
        counts = reconcile()
        if opts["json"]:
            self.stdout.write(json.dumps(counts, sort_keys=True))
            return
        if not counts:
            self.stdout.write("nothing to do")
            return
        for key, value in sorted(counts.items()):
            self.stdout.write(f"{key}: {value}")
