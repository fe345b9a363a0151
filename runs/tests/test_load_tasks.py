"""manage.py load_tasks: the engine's task catalog (worker.sim.catalog) as Task rows."""

import io

import pytest
from django.core.management import call_command

from runs.models import Task
from worker.sim import catalog


@pytest.mark.django_db
def test_load_tasks_puts_the_whole_catalog_in_the_database():
    out = io.StringIO()
    call_command("load_tasks", stdout=out)
    assert Task.objects.count() == len(catalog.all_tasks())
    lift = Task.objects.get(key="robosuite:Lift")
    assert lift.starter_program.startswith("# Camera-only Lift")
    drawer = Task.objects.get(key="libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet")
    assert drawer.instruction == "close the top drawer of the cabinet" and drawer.starter_program
    call_command("load_tasks", stdout=out)  # idempotent
    assert Task.objects.count() == len(catalog.all_tasks())
