"""REST: agent calls — list in order, detail, filters by run, actor and round (400s on bad ones), only the
runs the caller may read (other people's calls are 404), read-only, paginated, in the schema."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Team
from accounts.services import add_member
from accounts.tests.factories import UserFactory
from runs.models import AgentCall
from runs.tests.factories import TaskFactory

from .factories import AgentCallFactory, ExperimentFactory

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "run",
    "actor",
    "round",
    "backend",
    "model",
    "purpose",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "turns",
    "duration_s",
    "tool_calls",
    "retrieved_skills",
    "error",
    "created_at",
}


@pytest.fixture
def experiment(user):
    """A search experiment of ``user`` over Stack and Lift: one actor per task, no agent calls yet."""
    return ExperimentFactory(owner=user, tasks=[TaskFactory(key="robosuite:Stack"), TaskFactory(key="robosuite:Lift")])


def signed_in(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def ids(client, **params):
    response = client.get("/api/agent-calls/", params)
    assert response.status_code == 200, response.json()
    return [c["id"] for c in response.json()["results"]]


def test_it_refuses_agent_calls_without_credentials(experiment):
    call = AgentCallFactory(run=experiment)
    assert APIClient().get("/api/agent-calls/").status_code in (401, 403)
    assert APIClient().get(f"/api/agent-calls/{call.pk}/").status_code in (401, 403)


def test_it_lists_my_agent_calls_in_order_with_their_usage(api, experiment):
    first = AgentCallFactory(run=experiment, round=0)
    second = AgentCallFactory(
        run=experiment, round=1, backend="offline", model="", cost_usd=0.0, error="the agent timed out"
    )
    body = api.get("/api/agent-calls/").json()
    assert body["count"] == 2 and [c["id"] for c in body["results"]] == [first.pk, second.pk]
    assert set(body["results"][0]) == FIELDS
    listed = body["results"][1]
    assert (listed["run"], listed["actor"], listed["round"]) == (experiment.pk, second.actor_id, 1)
    assert (listed["backend"], listed["model"], listed["cost_usd"], listed["error"]) == (
        "offline",
        "",
        0.0,
        "the agent timed out",
    )


def test_it_shows_one_agent_call_with_its_tools_and_the_skills_it_was_offered(api, experiment):
    call = AgentCallFactory(run=experiment, purpose="skill", tool_calls=["search_skills", "read_skill"])
    body = api.get(f"/api/agent-calls/{call.pk}/").json()
    assert body["id"] == call.pk and body["run"] == experiment.pk and body["actor"] == call.actor_id
    assert (body["backend"], body["model"], body["purpose"]) == ("claude", "claude-test", "skill")
    tokens = (body["input_tokens"], body["output_tokens"], body["cache_read_tokens"], body["cache_write_tokens"])
    assert tokens == (1200, 300, 800, 100)
    assert (body["cost_usd"], body["turns"], body["duration_s"]) == (0.0125, 3, 4.5)
    assert body["tool_calls"] == ["search_skills", "read_skill"]
    assert body["retrieved_skills"] == [{"id": 1, "name": "fingers-clear", "score": 0.8}]
    assert api.get("/api/agent-calls/999999/").status_code == 404


def test_it_filters_agent_calls_by_run_actor_and_round(api, user, experiment):
    stack, lift = experiment.actors.get(task__key="robosuite:Stack"), experiment.actors.get(task__key="robosuite:Lift")
    other = ExperimentFactory(owner=user)
    a = AgentCallFactory(run=experiment, actor=stack, round=0)
    b = AgentCallFactory(run=experiment, actor=stack, round=1)
    c = AgentCallFactory(run=experiment, actor=lift, round=1)
    d = AgentCallFactory(run=other, round=0)
    assert ids(api) == [a.pk, b.pk, c.pk, d.pk]
    assert ids(api, run=experiment.pk) == [a.pk, b.pk, c.pk] and ids(api, run=other.pk) == [d.pk]
    assert ids(api, actor=stack.pk) == [a.pk, b.pk] and ids(api, actor=lift.pk) == [c.pk]
    assert ids(api, round=1) == [b.pk, c.pk] and ids(api, round=0) == [a.pk, d.pk]
    assert ids(api, run=experiment.pk, actor=lift.pk, round=1) == [c.pk]
    assert ids(api, actor=lift.pk, round=0) == [] and ids(api, run=999999) == []
    assert ids(api, run="", round="") == [a.pk, b.pk, c.pk, d.pk]  # an empty filter filters nothing


@pytest.mark.parametrize(
    "params, field",
    [
        ({"run": "x"}, "run"),
        ({"actor": "1.5"}, "actor"),
        ({"round": "first"}, "round"),
        ({"run": "1", "round": "-"}, "round"),
    ],
)
def test_it_answers_bad_agent_call_filters_with_400_and_the_field(api, experiment, params, field):
    AgentCallFactory(run=experiment)
    response = api.get("/api/agent-calls/", params)
    assert response.status_code == 400 and set(response.json()) == {field}
    assert "is not an integer" in response.json()[field][0]


def test_it_hides_other_peoples_agent_calls(api, experiment):
    mine = AgentCallFactory(run=experiment)
    their_run = ExperimentFactory(owner=UserFactory(username="someone-else"))
    theirs = AgentCallFactory(run=their_run)
    assert api.get(f"/api/agent-calls/{theirs.pk}/").status_code == 404
    assert ids(api) == [mine.pk]
    assert ids(api, run=their_run.pk) == [] and ids(api, actor=theirs.actor_id) == []
    assert signed_in(their_run.owner).get(f"/api/agent-calls/{theirs.pk}/").status_code == 200
    assert signed_in(their_run.owner).get(f"/api/agent-calls/{mine.pk}/").status_code == 404


def test_team_members_and_staff_read_a_team_experiments_agent_calls(user):
    team = Team.objects.create(name="lab")
    mate = UserFactory(username="mate")
    add_member(team, user)
    add_member(team, mate)
    shared = AgentCallFactory(run=ExperimentFactory(owner=user, team=team))
    private = AgentCallFactory(run=ExperimentFactory(owner=user))
    teammate = signed_in(mate)
    assert teammate.get(f"/api/agent-calls/{shared.pk}/").status_code == 200
    assert teammate.get(f"/api/agent-calls/{private.pk}/").status_code == 404
    assert ids(teammate) == [shared.pk]
    assert ids(signed_in(UserFactory(username="stranger"))) == []
    assert ids(signed_in(UserFactory(username="staff", is_staff=True))) == [shared.pk, private.pk]


def test_agent_calls_are_read_only(api, experiment):
    call = AgentCallFactory(run=experiment)
    assert api.post("/api/agent-calls/", {"run": experiment.pk, "backend": "openai"}, format="json").status_code == 405
    assert api.put(f"/api/agent-calls/{call.pk}/", {"backend": "openai"}, format="json").status_code == 405
    assert api.patch(f"/api/agent-calls/{call.pk}/", {"backend": "openai"}, format="json").status_code == 405
    assert api.delete(f"/api/agent-calls/{call.pk}/").status_code == 405
    assert AgentCall.objects.get().backend == "claude"


def test_it_paginates_agent_calls(api, experiment):
    calls = [AgentCallFactory(run=experiment, round=r) for r in range(3)]
    page = api.get("/api/agent-calls/", {"page_size": 2}).json()
    assert page["count"] == 3 and [c["id"] for c in page["results"]] == [calls[0].pk, calls[1].pk] and page["next"]
    rest = api.get(page["next"]).json()
    assert [c["id"] for c in rest["results"]] == [calls[2].pk] and rest["next"] is None


def test_the_schema_lists_the_agent_call_endpoints_and_filters(api):
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert {"/api/agent-calls/", "/api/agent-calls/{id}/"} <= set(paths)
    assert {p["name"] for p in paths["/api/agent-calls/"]["get"]["parameters"]} >= {"run", "actor", "round"}
    assert set(paths["/api/agent-calls/{id}/"]) == {"get"}
