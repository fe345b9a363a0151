"""REST: tasks."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_it_refuses_tasks_without_credentials(tasks):
    assert APIClient().get("/api/tasks/").status_code in (401, 403)


def test_it_lists_and_filters_tasks(api, tasks):
    body = api.get("/api/tasks/", {"benchmark": "robosuite"}).json()
    keys = [t["key"] for t in body["results"]]
    assert "robosuite:Lift" in keys and body["count"] == len(keys)
    assert api.get("/api/tasks/", {"benchmark": "nope"}).json()["count"] == 0
