"""REST: runs — list, filter, launch (with validation), cancel, other people's runs; the schema and docs."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Team
from accounts.services import add_member
from accounts.tests.factories import UserFactory
from runs.models import Outbox, Run

from .factories import RunFactory

pytestmark = pytest.mark.django_db


def test_it_refuses_requests_without_credentials(tasks):
    assert APIClient().get("/api/runs/").status_code in (401, 403)
    assert APIClient().post("/api/runs/", {"task": "robosuite:Lift", "seeds": "1"}).status_code in (401, 403)
    assert not Run.objects.exists()


def test_it_launches_a_run_with_the_starter_program(api, user, tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(
            "/api/runs/", {"task": "robosuite:Lift", "seeds": "101-102", "wall_seconds": 30}, format="json"
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert body["status"] == "QUEUED" and body["seeds"] == [101, 102] and body["owner"] == user.username
    assert run.source == "api" and run.settings["wall_seconds"] == 30 and run.candidates.get().origin == "starter"
    # One episode task per seed, written to the outbox with the run and published once it is committed.
    assert len(queued) == 2
    assert sorted(Outbox.objects.values_list("task_name", "args")) == [
        ("aspire.run_episode", [run.candidates.get().pk, "debug", 101]),
        ("aspire.run_episode", [run.candidates.get().pk, "debug", 102]),
    ]


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"seeds": "101"}, "task", "required"),
        ({"task": "robosuite:Nope", "seeds": "1"}, "task", "unknown task"),
        ({"task": "robosuite:Lift", "seeds": "9-1"}, "seeds", "backwards"),
        ({"task": "robosuite:Lift", "seeds": [1, "x"]}, "seeds", "list of integers"),
        ({"task": "robosuite:Lift", "seeds": "1-500"}, "seeds", "at most 200"),
        ({"task": "robosuite:Lift", "seeds": "1", "wall_seconds": 0}, "wall_seconds", "greater than or equal to 1"),
        ({"task": "robosuite:Lift", "seeds": "1", "program": "  "}, "program", "empty"),
        ({"task": "robosuite:Lift", "seeds": "1", "team": "ghosts"}, "team", "not a member"),
    ],
)
def test_it_answers_bad_launch_input_with_field_messages_and_creates_nothing(api, tasks, data, field, message):
    response = api.post("/api/runs/", data, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Run.objects.exists()


def test_it_launches_a_team_run_that_teammates_can_read(api, user, tasks):
    team = Team.objects.create(name="lab")
    add_member(team, user)
    mate = UserFactory(username="mate")
    add_member(team, mate)
    run_id = api.post(
        "/api/runs/",
        {"task": "robosuite:Lift", "seeds": [1], "team": "lab", "program": "get_observation()\n"},
        format="json",
    ).json()["id"]
    other = APIClient()
    other.force_authenticate(mate)
    assert other.get(f"/api/runs/{run_id}/").json()["team"] == "lab"
    assert [r["id"] for r in other.get("/api/runs/", {"team": "lab"}).json()["results"]] == [run_id]


def test_it_hides_other_peoples_runs(api, tasks):
    theirs = RunFactory(owner=UserFactory(username="someone-else"))
    assert api.get(f"/api/runs/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/runs/{theirs.pk}/cancel/").status_code == 404
    assert api.get("/api/runs/").json()["count"] == 0
    assert api.get("/api/runs/999999/").status_code == 404


def test_it_cancels_an_active_run_once(api, user, tasks):
    run = RunFactory(owner=user)
    response = api.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    again = api.post(f"/api/runs/{run.pk}/cancel/")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


def test_it_filters_and_paginates_runs(api, user, tasks):
    for _ in range(3):
        RunFactory(owner=user)
    Run.objects.filter(pk=Run.objects.first().pk).update(status="FINISHED")
    assert api.get("/api/runs/", {"status": "FINISHED"}).json()["count"] == 1
    page = api.get("/api/runs/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_it_serves_the_openapi_schema_and_offline_docs(api, client, user):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/runs/", "/api/runs/{id}/cancel/", "/api/calls/", "/api/keyframes/{id}/image/", "/api/episodes/"):
        assert path in paths
    assert {p["name"] for p in paths["/api/calls/"]["get"]["parameters"]} >= {
        "episode",
        "status",
        "primitive",
        "after_seq",
    }
    client.force_login(user)
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "/static/drf_spectacular_sidecar/" in docs
