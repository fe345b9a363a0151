"""The ``mcp`` agent backend and its MCP server, through the SDK's own clients: stdio against the real
``manage.py mcp_server`` subprocess, streamable HTTP against the web app served by Daphne, and the SDK's
in-process client for the round's rules.

The worker pool is played in this process (:func:`drive`: the real messages off the real Redis queue),
with episodes of the search's candidates replaced by instant results where a test is about the round,
not the simulator; run_candidate runs the real simulator (robosuite Lift, MUJOCO_GL=osmesa).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from django.conf import settings
from mcp import ClientSession, StdioServerParameters, types
from mcp.client import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from rest_framework.authtoken.models import Token

from experiments import coordinator
from experiments.external import Principal
from experiments.mcp_server import build_server
from experiments.queues import ACTOR_STEP
from experiments.services import create_experiment, start_experiment
from runs import services, work
from runs.models import Actor, AgentCall, Candidate, Episode, Outbox, Run, Task
from runs.reconcile import reconcile
from testing.pool import drive
from worker.search.rounds import FLOOR_HYPOTHESIS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_holds_left")]

ROOT = Path(__file__).resolve().parents[2]
TOOL_NAMES = {
    "observe_task",
    "run_candidate",
    "list_calls",
    "get_call",
    "get_keyframe",
    "search_skills",
    "read_skill",
    "submit_candidates",
    "propose_skill",
}
LOOK = """obs = get_observation()
rgb = obs["agentview"]["images"]["rgb"]
found = segment_text_prompt(rgb, "red cube")
print(len(found))
"""


# -- rows ---------------------------------------------------------------------------------------------
@pytest.fixture
def lift(db):
    services.sync_catalog()
    return Task.objects.get(key="robosuite:Lift")


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw")


@pytest.fixture
def token(ada):
    return Token.objects.create(user=ada).key


@pytest.fixture
def other_token(django_user_model):
    return Token.objects.create(user=django_user_model.objects.create_user("eve", password="pw")).key


def launch(task, owner, backend="mcp", k=2, rounds=2, debug=(101, 102), heldout=(1,)) -> Run:
    run = create_experiment(
        kind="search",
        tasks=[task],
        owner=owner,
        agent={"backend": backend},
        search={"candidates_per_round": k, "max_rounds": rounds},
        debug_seeds=list(debug),
        heldout_seeds=list(heldout),
    )
    start_experiment(run)
    return run


@pytest.fixture
def awaiting(lift, ada, broker):
    """An mcp experiment's actor, its round 0 briefed and AWAITING its client."""
    run = launch(lift, ada)
    drive(broker)
    actor = run.actors.get()
    assert actor.status == Actor.Status.AWAITING, actor.error
    return actor


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


@asynccontextmanager
async def in_process(actor: Actor, user):
    """The SDK's own client connected in-process to the server, acting as ``user`` for ``actor``."""
    async with Client(build_server(lambda ctx: Principal(user.pk, actor.pk))) as client:
        yield client


def within(seconds: float, fn):
    """Run the coroutine function ``fn`` on an event loop, failing after ``seconds``."""

    async def bounded():
        with anyio.fail_after(seconds):
            return await fn()

    return anyio.run(bounded)


def call(actor, user, name, arguments=None) -> types.CallToolResult:
    async def go():
        async with in_process(actor, user) as client:
            return await client.call_tool(name, arguments or {})

    return anyio.run(go)


# -- the round: briefed, not blocking, not stuck ------------------------------------------------------
def test_the_api_and_the_form_offer_the_mcp_backend(api, lift, broker):
    from experiments.forms import ExperimentForm

    body = {"kind": "search", "tasks": [lift.key], "agent": "mcp", "max_rounds": 1, "candidates_per_round": 2}
    response = api.post("/api/experiments/", {**body, "debug_seeds": "101-102", "heldout_seeds": "1"}, format="json")
    assert response.status_code == 201, response.json()
    assert Run.objects.get(pk=response.json()["id"]).settings["agent"] == {"backend": "mcp"}
    assert "mcp" in dict(ExperimentForm(user=None).fields["agent"].choices)


def test_it_leaves_an_mcp_round_awaiting_its_client_with_the_brief(awaiting):
    brief = awaiting.agent_brief
    assert brief["round"] == 0 and brief["k"] == 2 and brief["debug_seeds"] == [101, 102]
    assert "Robot API" in brief["system_prompt"] and "Task robosuite:Lift" in brief["message"]
    assert awaiting.worker == ""  # no process holds it
    assert not Candidate.objects.filter(actor=awaiting).exists()


def test_it_keeps_the_reconciler_from_failing_or_re_proposing_an_awaiting_actor(awaiting, broker):
    Actor.objects.filter(pk=awaiting.pk).update(worker="aspire@a-machine-that-died:7", heartbeat_at=None)
    counts = reconcile()
    assert not counts.get("actors_failed") and not counts.get("actor_steps_sent"), counts
    assert not Outbox.objects.filter(task_name=ACTOR_STEP, sent_at__isnull=True).exists()
    coordinator.actor_step(awaiting.pk)  # a stray message changes nothing either
    awaiting.refresh_from_db()
    assert awaiting.status == Actor.Status.AWAITING and awaiting.agent_brief["round"] == 0


def test_cancel_ends_an_awaiting_actor_and_its_client_is_told(awaiting, ada):
    services.cancel_run(awaiting.run, by=ada)
    awaiting.refresh_from_db()
    assert awaiting.status == Actor.Status.CANCELLED
    result = call(awaiting, ada, "run_candidate", {"code": LOOK, "seeds": [101]})
    assert result.is_error and "ended (CANCELLED)" in text_of(result)


# -- tools through the SDK's in-process client --------------------------------------------------------
def test_observe_task_gives_the_brief_rules_and_budgets(awaiting, ada):
    result = call(awaiting, ada, "observe_task")
    text = text_of(result)
    assert not result.is_error
    assert "round 0" in text and "Lift" in text and "debug seeds: 101, 102" in text
    assert "12 more of 12 experiment episodes" in text and "submit up to 2 candidates" in text
    assert "# Robot API" in text  # the system prompt with the API reference


def test_submit_candidates_continues_the_round_as_the_built_in_path(awaiting, ada, broker, instant_episodes):
    dup = call(awaiting, ada, "submit_candidates", {"candidates": [{"hypothesis": "h", "code": "x=1"}] * 2})
    assert dup.is_error and "share a hypothesis" in text_of(dup)
    ok = call(
        awaiting,
        ada,
        "submit_candidates",
        {"candidates": [{"hypothesis": "look first", "code": LOOK}, {"hypothesis": "just wait", "code": "x = 1"}]},
    )
    assert not ok.is_error, text_of(ok)
    awaiting.refresh_from_db()
    assert awaiting.status == Actor.Status.EVALUATING and awaiting.current_round == 0
    round0 = list(awaiting.search_candidates().filter(round=0).order_by("index"))
    assert [c.hypothesis for c in round0] == ["look first", "just wait"]
    agent_call = AgentCall.objects.get(actor=awaiting, round=0)
    assert agent_call.backend == "mcp" and agent_call.cost_usd == 0 and agent_call.input_tokens == 0
    assert agent_call.tool_calls == ["submit_candidates", "submit_candidates"] and agent_call.turns == 2
    assert {c.agent_call_id for c in round0} == {agent_call.pk}
    queued = Outbox.objects.filter(task_name=work.RUN_EPISODE).values_list("args", flat=True)
    assert sorted((a[0], a[2]) for a in queued) == sorted((c.pk, s) for c in round0 for s in (101, 102))
    again = call(awaiting, ada, "submit_candidates", {"candidates": [{"hypothesis": "late", "code": "x = 2"}]})
    assert again.is_error  # the round is no longer open

    # The episodes settle, the barrier moves the actor on: round 1 is briefed for the client, with the floor.
    instant_episodes.failing = {102}
    drive(broker)
    awaiting.refresh_from_db()
    assert awaiting.status == Actor.Status.AWAITING and awaiting.agent_brief["round"] == 1, awaiting.error
    assert "submit up to 1 candidates" in text_of(call(awaiting, ada, "observe_task"))
    three = [{"hypothesis": f"idea {i}", "code": f"x = {i}"} for i in range(3)]
    reply = call(awaiting, ada, "submit_candidates", {"candidates": three})
    assert not reply.is_error and "not kept" in text_of(reply)
    round1 = list(awaiting.search_candidates().filter(round=1).order_by("index"))
    assert [c.hypothesis for c in round1] == [FLOOR_HYPOTHESIS, "idea 0"]  # A = the best, unchanged; K = 2
    assert round1[0].program == round0[0].program
    drive(broker)  # round 1 evaluated; the round budget stops the search; held-out; the run ends
    run = Run.objects.get(pk=awaiting.run_id)
    assert run.status == Run.Status.FINISHED, run.error
    assert AgentCall.objects.filter(actor=awaiting, backend="mcp").count() == 2


def test_the_experiment_budget_holds_across_calls_and_is_refused_when_spent(lift, ada, broker):
    run = launch(lift, ada, debug=tuple(range(101, 121)))
    drive(broker)
    actor = run.actors.get()
    asked = call(actor, ada, "run_candidate", {"code": LOOK, "seeds": list(range(101, 114))})  # 13 > 12
    assert asked.is_error and "allows 12 more" in text_of(asked)
    actor.refresh_from_db()
    state = {**actor.agent_brief, "episodes_used": 11}  # as earlier calls (another process) left it
    Actor.objects.filter(pk=actor.pk).update(agent_brief=state)
    refused = call(actor, ada, "run_candidate", {"code": LOOK, "seeds": [101, 102]})
    assert refused.is_error and "allows 1 more" in text_of(refused)
    assert not Candidate.objects.filter(actor=actor, origin="experiment").exists()
    actor.refresh_from_db()
    assert actor.agent_brief["tool_calls"] == ["run_candidate", "run_candidate"]


def test_it_refuses_another_users_actor_and_a_non_mcp_actor(awaiting, lift, django_user_model, broker):
    eve = django_user_model.objects.create_user("eve", password="pw")
    result = call(awaiting, eve, "observe_task")
    assert result.is_error and "access refused" in text_of(result)
    offline = launch(lift, eve, backend="offline").actors.get()
    result = call(offline, eve, "observe_task")
    assert result.is_error and "not an mcp actor" in text_of(result)


def test_each_tool_call_goes_to_the_conversation_log(awaiting, ada, monkeypatch):
    from experiments.workbench import DjangoWorkbench

    turns = []
    monkeypatch.setattr(DjangoWorkbench, "record_turn", lambda self, **kw: turns.append(kw), raising=False)
    call(awaiting, ada, "search_skills", {"query": "grasp"})
    call(awaiting, ada, "list_calls", {"episode": "999999"})
    assert [t["turn"] for t in turns] == [1, 2]
    assert all(t["backend"] == "mcp" and t["round"] == 0 and t["sent"] == [] for t in turns)
    assert turns[1]["tools"][0]["name"] == "list_calls" and turns[1]["tools"][0]["is_error"]
    assert turns[0]["usage"] == {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0}


# -- stdio: the real management command ---------------------------------------------------------------
def subprocess_env(tmp_path) -> dict:
    """What ``manage.py`` needs to use this test's database, media and Redis."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ASPIRE_TOKEN"))}
    env.update(
        DJANGO_SETTINGS_MODULE="aspire_web.settings.local",
        DATABASE_URL=url,
        ASPIRE_VAR_DIR=str(tmp_path / "var"),
        ASPIRE_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        REDIS_URL=settings.CELERY_BROKER_URL,
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "osmesa"),
        PYOPENGL_PLATFORM=os.environ.get("PYOPENGL_PLATFORM", "osmesa"),
        PYTHONUNBUFFERED="1",
    )
    return env


def stdio_params(actor, token, tmp_path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_server", "--actor", str(actor.pk)],
        env={**subprocess_env(tmp_path), "ASPIRE_TOKEN": token},
        cwd=str(ROOT),
    )


def test_the_stdio_command_lists_the_tools_and_observes_the_round(awaiting, token, tmp_path):
    async def go():
        async with stdio_client(stdio_params(awaiting, token, tmp_path)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                observed = await session.call_tool("observe_task", {})
                return tools, observed

    tools, observed = within(120, go)
    assert {t.name for t in tools.tools} == TOOL_NAMES
    assert next(t for t in tools.tools if t.name == "run_candidate").input_schema["required"] == ["code", "seeds"]
    assert not observed.is_error and "round 0" in text_of(observed) and "# Robot API" in text_of(observed)


def test_the_stdio_command_refuses_a_foreign_token_and_a_non_mcp_actor(
    awaiting, token, other_token, lift, ada, tmp_path
):
    env = subprocess_env(tmp_path)
    command = [sys.executable, "manage.py", "mcp_server", "--actor", str(awaiting.pk)]
    done = subprocess.run(command, cwd=ROOT, env={**env, "ASPIRE_TOKEN": other_token}, capture_output=True, text=True)
    assert done.returncode != 0 and f"no actor {awaiting.pk} that eve may act for" in done.stderr
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "no API token" in done.stderr
    offline = launch(lift, ada, backend="offline").actors.get()
    done = subprocess.run(
        [sys.executable, "manage.py", "mcp_server", "--actor", str(offline.pk), "--token", token],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "not an mcp actor" in done.stderr


@pytest.mark.slow
def test_run_candidate_runs_the_simulator_and_get_keyframe_returns_an_image_over_stdio(awaiting, token, tmp_path):
    """A real Lift episode on one seed, in the server process; its keyframe as an MCP image block."""

    async def go():
        async with stdio_client(stdio_params(awaiting, token, tmp_path)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                ran = await session.call_tool("run_candidate", {"code": LOOK, "seeds": [101], "hypothesis": "look"})
                episode = Episode.objects.filter(candidate__actor_id=awaiting.pk, candidate__origin="experiment")
                ep = await anyio.to_thread.run_sync(lambda: episode.get())
                calls = await session.call_tool("list_calls", {"episode": str(ep.pk)})
                keyframe = await anyio.to_thread.run_sync(lambda: ep.keyframes.first())
                image = await session.call_tool("get_keyframe", {"keyframe": str(keyframe.pk)})
                observed = await session.call_tool("observe_task", {})
                return ran, calls, image, observed

    ran, calls, image, observed = within(600, go)
    assert not ran.is_error, text_of(ran)
    assert "seed 101 (episode" in text_of(ran) and "candidate" in text_of(ran)
    assert "get_observation" in text_of(calls) and "segment_text_prompt" in text_of(calls)
    images = [c for c in image.content if isinstance(c, types.ImageContent)]
    assert not image.is_error and len(images) == 1 and images[0].mime_type == "image/jpeg"
    assert base64.b64decode(images[0].data)[:2] == b"\xff\xd8"  # a JPEG
    assert "11 more of 12 experiment episodes" in text_of(observed)  # the budget, counted in the database
    awaiting.refresh_from_db()
    assert awaiting.agent_brief["episodes_used"] == 1


# -- streamable HTTP: the web app on Daphne -----------------------------------------------------------
def http_session(url, key):
    @asynccontextmanager
    async def session():
        headers = {"Authorization": f"Token {key}"} if key else {}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    yield s

    return session()


def test_the_web_app_serves_the_actor_over_streamable_http(awaiting, token, other_token, asgi_live_server):
    url = f"{asgi_live_server.url}/mcp/actors/{awaiting.pk}/"

    async def go():
        async with http_session(url, token) as s:
            tools = await s.list_tools()
            observed = await s.call_tool("observe_task", {})
            skills = await s.call_tool("search_skills", {"query": "grasp the cube"})
            return tools, observed, skills

    tools, observed, skills = within(120, go)
    assert {t.name for t in tools.tools} == TOOL_NAMES
    assert not observed.is_error and "round 0" in text_of(observed)
    assert not skills.is_error and isinstance(json.loads(text_of(skills).rsplit("\n\n[budget", 1)[0]), list)
    awaiting.refresh_from_db()
    assert awaiting.agent_brief["tool_calls"] == ["observe_task", "search_skills"]

    # Refused before the protocol (the SDK's client fails to connect): another user's token, no token.
    for key in (other_token, ""):
        with pytest.raises(Exception, match="unhandled errors|error response|40[13]"):
            within(30, lambda: _initialize(url, key))
    status = httpx2.post(f"{asgi_live_server.url}/mcp/", headers={"Authorization": f"Token {token}"}, json={})
    assert status.status_code == 404
    status = httpx2.post(url, headers={"Authorization": f"Token {other_token}"}, json={})
    assert status.status_code == 403 and f"no actor {awaiting.pk}" in status.json()["error"]
    assert httpx2.post(url, json={}).status_code == 401


async def _initialize(url, key):
    async with http_session(url, key):
        pass
