from django.core.management.base import BaseCommand

from runs.services import sync_catalog


class Command(BaseCommand):
    help = "Load (or refresh) the benchmark task catalog into the database."

    def handle(self, *args, **opts):
        count = sync_catalog()
        self.stdout.write(f"{count} tasks in the catalog")
