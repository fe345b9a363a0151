"""Agents' conversations: every model turn of the Claude and OpenAI-compatible agents stored as an AgentTurn
(experiments.conversations), in full only when the experiment's ``record`` setting is on and with API keys
stripped; token and cost accounting that adds up turn by turn; the conversation page, its JSON download
and the actor page's turn list, under the actor page's access rules and a run's share links."""

import json
import logging

import anthropic
import openai
import pytest
from django.template.defaultfilters import floatformat
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import UserFactory
from experiments.agents import RecordedOfflineAgent
from experiments.conversations import strip_secrets
from experiments.tests.factories import ExperimentFactory
from experiments.workbench import DjangoWorkbench
from runs.models import AgentCall, AgentTurn, Candidate, Episode, Keyframe
from runs.sink import DjangoSink
from runs.tests.factories import CallRecordFactory, EpisodeResultFactory, KeyframeRecordFactory
from testing.sharing import make_link
from worker.agents.llm import ClaudeAgent, OpenAICompatibleAgent
from worker.agents.pricing import AgentUsage
from worker.events import EpisodeStart
from worker.search.core import Brief

KEY = "sk-ant-api03-Zx9SECRETSECRETSECRET0123456789"
OPENAI_KEY = "sk-proj-4f2SECRETSECRETSECRETabcdef"
CLAUDE_MODEL = "claude-opus-5-5"  # priced (worker.agents.pricing), so costs are not zero
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


# -- scripted models ------------------------------------------------------------------------------------


class FakeClaude:
    """An anthropic.Anthropic stand-in: ``messages.create`` answers the scripted Messages in order and
    keeps each request's keyword arguments."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.requests = []
        self.messages = self

    def create(self, **kwargs):
        self.requests.append(kwargs)
        return self.responses.pop(0)


class FakeOpenAI:
    """An openai.OpenAI stand-in: ``chat.completions.create`` answers the scripted ChatCompletions."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.requests = []
        self.chat = self
        self.completions = self

    def create(self, **kwargs):
        self.requests.append(kwargs)
        return self.responses.pop(0)


def claude_message(n, content, usage):
    return anthropic.types.Message.model_validate(
        {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": CLAUDE_MODEL,
            "content": content,
            "stop_reason": "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn",
            "stop_sequence": None,
            "usage": dict(
                zip(("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"), usage)
            ),
        }
    )


def tool_use(n, name, arguments):
    return {"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": arguments}


SUBMISSION = {
    "candidates": [
        {"hypothesis": "grasp the cube's top face", "code": "obs = get_observation()\nprint('top face')\n"},
        {"hypothesis": "approach from higher", "code": "obs = get_observation()\nprint('higher')\n"},
    ]
}


def claude_round(keyframe_id=None):
    """A Claude round: search skills, look at a keyframe (when given), answer with text only once (the
    agent asks for the submission), then submit. The model quotes an API key in its text and its code."""
    turns = [
        claude_message(
            1,
            [
                {"type": "text", "text": f"I will search the library first. (key {KEY})"},
                tool_use(1, "search_skills", {"query": "stack cube grasp"}),
            ],
            (1200, 80, 0, 5000),
        )
    ]
    if keyframe_id is not None:
        turns.append(
            claude_message(
                2,
                [
                    {"type": "text", "text": "Let me look at the frame where the grasp failed."},
                    tool_use(2, "get_keyframe", {"keyframe": str(keyframe_id)}),
                ],
                (300, 60, 5000, 400),
            )
        )
    turns.append(
        claude_message(3, [{"type": "text", "text": "The gripper closes above the cube."}], (250, 40, 5400, 0))
    )
    code = f'api_key = "{KEY}"\nobs = get_observation()\n'
    turns.append(
        claude_message(
            4,
            [
                tool_use(
                    4,
                    "submit_candidates",
                    {"candidates": SUBMISSION["candidates"] + [{"hypothesis": "with a key", "code": code}]},
                )
            ],
            (120, 900, 5600, 100),
        )
    )
    return turns


def openai_completion(n, content, calls, usage):
    prompt, completion, cached = usage
    return openai.types.chat.ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": 1700000000 + n,
            "model": "local-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if calls else "stop",
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "tool_calls": [
                            {
                                "id": f"call_{n}_{i}",
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(arguments)},
                            }
                            for i, (name, arguments) in enumerate(calls)
                        ]
                        or None,
                    },
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }
    )


def openai_round():
    return [
        openai_completion(
            1, f"Searching skills ({OPENAI_KEY}).", [("search_skills", {"query": "stack"})], (900, 50, 0)
        ),
        openai_completion(2, "Nothing to call.", [], (1100, 30, 800)),
        openai_completion(3, None, [("submit_candidates", SUBMISSION)], (1300, 700, 1000)),
    ]


def make_brief(actor, round_number=0):
    task = actor.task
    return Brief(
        task.key,
        task.instruction,
        task.arms,
        tuple(task.cameras),
        round_number,
        2,
        tuple(actor.settings["debug_seeds"]),
        [],
        [],
        [],
    )


class NoExperiments(DjangoWorkbench):
    """The database workbench, whose evaluate the scripted models never reach."""

    def evaluate(self, *args, **kwargs):
        raise AssertionError("the scripted conversation runs no experiments")


def converse(actor, agent, round_number=0):
    workbench = NoExperiments(actor, round_number, skill_source=lambda query, k: [])
    proposals = agent.propose(make_brief(actor, round_number), workbench)
    return proposals, workbench


def experiment(user, backend="claude", record=False, **kwargs):
    agent = {
        "backend": backend,
        **({"model": "local-model", "base_url": "http://llm:8000/v1"} if backend == "openai" else {}),
    }
    return ExperimentFactory(owner=user, agent=agent, record=record, **kwargs)


def keyframe_of(actor) -> Keyframe:
    """A keyframe of one of the actor's episodes (a failed debug seed of a round-0 candidate)."""
    candidate = Candidate.objects.create(
        run=actor.run, actor=actor, round=0, index=0, program="obs = get_observation()\n", program_hash="h0",
        origin="agent",
    )  # fmt: skip
    sink = DjangoSink(candidate, Episode.Split.DEBUG)
    ep = sink.episode_started(EpisodeStart(actor.task.key, 101, "h0"))
    sink.call_recorded(ep, CallRecordFactory(seq=1, keyframes=[KeyframeRecordFactory(path="test/conv-frame.jpg")]))
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=1, success=False, status="EXCEPTION"))
    return Keyframe.objects.get(episode_id=ep)


@pytest.fixture
def recorded_actor(user, tasks):
    """An actor of ``user``'s recorded Claude experiment after one scripted round that looked at a keyframe."""
    run = experiment(user, record=True)
    actor = run.actors.get()
    kf = keyframe_of(actor)
    converse(actor, ClaudeAgent(client=FakeClaude(claude_round(kf.pk)), model=CLAUDE_MODEL))
    actor.keyframe = kf
    return actor


def dumped(turn: AgentTurn) -> str:
    return json.dumps([turn.text, turn.tools, turn.sent, turn.response])


# -- what is stored -------------------------------------------------------------------------------------


def test_record_on_stores_requests_and_responses_with_keys_stripped(recorded_actor):
    turns = list(recorded_actor.agent_turns.order_by("turn"))
    assert [t.turn for t in turns] == [1, 2, 3, 4] and all(t.round == 0 and t.recorded for t in turns)
    first, look, text_only, submit = turns
    # The first turn sent the system prompt and the round's task; the response is the SDK's dump.
    assert first.sent[0]["role"] == "system" and "### solve_ik" in first.sent[0]["content"][0]["text"]
    assert "Stack" in json.dumps(first.sent[1]) and first.response["id"] == "msg_1"
    assert first.tools[0]["name"] == "search_skills" and first.tools[0]["arguments"] == {"query": "stack cube grasp"}
    # The keyframe went back as an image: a placeholder in what was sent, its ref in the tool entry.
    assert look.tools[0]["keyframes"] == [str(recorded_actor.keyframe.pk)]
    assert '"omitted"' in json.dumps(text_only.sent) and "base64" not in json.dumps(text_only.sent).replace(
        "base64 image", ""
    )
    assert text_only.tools == [] and text_only.text == "The gripper closes above the cube."
    # A key the model quoted is gone everywhere: its text, the response, the tool's arguments.
    assert all(KEY not in dumped(t) and "SECRETSECRET" not in dumped(t) for t in turns)
    assert "[stripped]" in first.text and "[stripped]" in json.dumps(first.response)
    assert 'api_key = \\"[stripped]\\"' in json.dumps(submit.response)
    assert submit.tools[0]["arguments"]["candidates"][2]["code"].startswith('api_key = "[stripped]"')


def test_secrets_are_stripped_by_name_and_by_look():
    cleaned = strip_secrets(
        {
            "headers": {
                "x-api-key": "abc123",
                "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.payload",
                "accept": "json",
            },
            "api_key": "anything",
            "max_tokens": 8000,
            "note": f"use {OPENAI_KEY} or Bearer abcdefgh12345 please; a task-name-like-this stays",
            "list": [KEY, "plain"],
        }
    )
    assert cleaned["headers"] == {"x-api-key": "[stripped]", "Authorization": "[stripped]", "accept": "json"}
    assert cleaned["api_key"] == "[stripped]" and cleaned["max_tokens"] == 8000
    assert cleaned["note"] == "use [stripped] or [stripped] please; a task-name-like-this stays"
    assert cleaned["list"] == ["[stripped]", "plain"]


def test_record_off_keeps_only_the_compact_log(user, tasks):
    run = experiment(user, record=False)
    actor = run.actors.get()
    assert run.settings["record"] is False
    converse(actor, ClaudeAgent(client=FakeClaude(claude_round()), model=CLAUDE_MODEL))
    turns = list(actor.agent_turns.all())
    assert len(turns) == 3 and not any(t.recorded for t in turns)
    assert all(t.sent is None and t.response is None for t in turns)
    assert turns[0].text.startswith("I will search the library first.") and turns[0].tools[0]["name"] == "search_skills"
    submit = turns[-1].tools[0]
    assert submit["name"] == "submit_candidates" and set(submit) == {
        "name",
        "arguments",
        "text",
        "is_error",
        "keyframes",
    }
    # A short summary of the submission: each candidate's fields cut short.
    assert [c["hypothesis"] for c in submit["arguments"]["candidates"]][:2] == [
        "grasp the cube's top face",
        "approach from higher",
    ]
    assert all(len(c["code"]) < 120 for c in submit["arguments"]["candidates"])
    assert all(KEY not in dumped(t) for t in turns)


def test_a_retried_turn_replaces_its_row_and_log_problems_never_reach_the_agent(user, tasks, caplog):
    run = experiment(user, record=True)
    actor = run.actors.get()
    other = experiment(user).actors.get()
    foreign = keyframe_of(other)
    workbench = DjangoWorkbench(actor, 0)
    entry = {"name": "list_calls", "arguments": {"episode": "1"}, "text": "x" * 5000, "is_error": False}
    for tokens in (100, 250):  # the same turn recorded twice (a retry): one row, the latest figures
        workbench.record_turn(
            round=0,
            turn=1,
            backend="claude",
            model=CLAUDE_MODEL,
            sent=[{"role": "user", "content": "hi"}],
            response={"content": [{"type": "text", "text": "hello"}]},
            tools=[{**entry, "keyframes": [str(foreign.pk), "not-a-ref"]}],
            usage={"input_tokens": tokens, "output_tokens": 10},
        )
    row = AgentTurn.objects.get(actor=actor)
    assert row.input_tokens == 250 and row.text == "hello"
    assert row.cost_usd == pytest.approx(
        AgentUsage("claude", CLAUDE_MODEL, input_tokens=250, output_tokens=10).cost_usd
    )
    assert row.tools[0]["keyframes"] == []  # another actor's keyframe is not this log's to show
    assert len(row.tools[0]["text"]) < 2100
    # Something that cannot be stored is logged; the agent carries on.
    with caplog.at_level(logging.ERROR, logger="experiments.conversations"):
        workbench.record_turn(
            round=0, turn=2, backend="claude", model="m", sent=None, response=None, tools=[],
            usage={"input_tokens": "many"},
        )  # fmt: skip
    assert "could not record turn 2" in caplog.text and AgentTurn.objects.filter(actor=actor).count() == 1


def test_a_retried_round_records_each_turn_once(user, tasks):
    actor = experiment(user, record=True).actors.get()
    for _ in range(2):
        converse(actor, ClaudeAgent(client=FakeClaude(claude_round()), model=CLAUDE_MODEL))
    assert list(actor.agent_turns.values_list("turn", flat=True)) == [1, 2, 3]
    calls = list(AgentCall.objects.filter(actor=actor))
    assert len(calls) == 2 and calls[0].agent_turns.count() == 3 and calls[1].agent_turns.count() == 0


# -- token accounting -----------------------------------------------------------------------------------


def sums(rows):
    return {k: sum(getattr(r, k) for r in rows) for k in USAGE_KEYS + ("cost_usd",)}


def assert_adds_up(turns, call):
    total = sums(turns)
    for key in USAGE_KEYS:
        assert total[key] == getattr(call, key), key
    assert total["cost_usd"] == pytest.approx(call.cost_usd, abs=1e-6)


def test_claude_turns_add_up_to_the_rounds_agent_calls_and_the_totals(user, tasks):
    run = experiment(user)
    actor = run.actors.get()
    keyframe = keyframe_of(actor)
    fake = FakeClaude(claude_round(keyframe.pk) + claude_round())
    agent = ClaudeAgent(client=fake, model=CLAUDE_MODEL)
    converse(actor, agent, 0)
    converse(actor, agent, 1)
    calls = list(AgentCall.objects.filter(actor=actor).order_by("round"))
    assert [c.round for c in calls] == [0, 1] and [c.turns for c in calls] == [4, 3]
    for call in calls:
        turns = list(AgentTurn.objects.filter(actor=actor, round=call.round))
        assert {t.agent_call_id for t in turns} == {call.pk} and len(turns) == call.turns
        assert_adds_up(turns, call)
    # The scripted usage, turn by turn: Anthropic's input, output, cache read and cache write fields.
    first = AgentTurn.objects.get(actor=actor, round=0, turn=1)
    assert (first.input_tokens, first.output_tokens, first.cache_read_tokens, first.cache_write_tokens) == (
        1200,
        80,
        0,
        5000,
    )
    assert first.cost_usd == pytest.approx((1200 * 4.00 + 80 * 20.00 + 5000 * 5.00) / 1e6)
    everything = list(AgentTurn.objects.filter(actor=actor))
    actor.refresh_from_db()
    run.refresh_from_db()
    for row in (actor, run):
        assert_adds_up(everything, row)
    assert actor.cost_usd > 0


def test_openai_turns_add_up_with_cached_prompt_tokens_split_out(user, tasks, monkeypatch):
    monkeypatch.setenv("ASPIRE_MODEL_PRICES", json.dumps({"local-model": [1.0, 0, 0.25, 2.0]}))
    run = experiment(user, backend="openai", record=True)
    actor = run.actors.get()
    proposals, workbench = converse(
        actor, OpenAICompatibleAgent(client=FakeOpenAI(openai_round()), model="local-model")
    )
    assert [p.hypothesis for p in proposals] == ["grasp the cube's top face", "approach from higher"]
    turns = list(AgentTurn.objects.filter(actor=actor).order_by("turn"))
    assert [(t.input_tokens, t.cache_read_tokens, t.output_tokens) for t in turns] == [
        (900, 0, 50),
        (300, 800, 30),
        (300, 1000, 700),
    ]
    assert turns[2].cost_usd == pytest.approx((300 * 1.0 + 1000 * 0.25 + 700 * 2.0) / 1e6)
    call = workbench.agent_call
    assert {t.agent_call_id for t in turns} == {call.pk}
    assert_adds_up(turns, call)
    actor.refresh_from_db()
    run.refresh_from_db()
    assert_adds_up(turns, actor)
    assert_adds_up(turns, run)
    # Recorded in full: the chat-completions dump, and what was sent (system prompt first), keys stripped.
    assert turns[0].sent[0]["role"] == "system" and turns[0].response["object"] == "chat.completion"
    assert turns[1].sent[0]["role"] == "tool" and turns[2].sent[-1]["content"].startswith("Submit your candidates")
    assert all(OPENAI_KEY not in dumped(t) for t in turns) and "[stripped]" in turns[0].text


def test_the_offline_agent_records_no_tokens_and_no_cost(user, tasks):
    run = experiment(user, backend="offline", record=True)
    actor = run.actors.get()
    brief = make_brief(actor)
    workbench = DjangoWorkbench(actor, 0)
    assert RecordedOfflineAgent(seed=0).propose(brief, workbench)
    call = AgentCall.objects.get(actor=actor)
    assert call.backend == "offline" and call.cost_usd == 0
    assert all(getattr(call, k) == 0 for k in USAGE_KEYS)
    assert not AgentTurn.objects.filter(actor=actor).exists()
    actor.refresh_from_db()
    assert actor.cost_usd == 0 and all(getattr(actor, k) == 0 for k in USAGE_KEYS)


# -- launching with record ------------------------------------------------------------------------------


def test_record_is_a_launch_option_of_the_form_and_the_api(owner_client, api, tasks):
    from experiments.tests.test_web_pages import FORM_DEFAULTS

    page = owner_client.get(reverse("experiments:create")).content.decode()
    assert 'name="record"' in page and 'type="checkbox"' in page
    form = {"kind": "search", "agent": "offline", "tasks": ["robosuite:Stack"], **FORM_DEFAULTS}
    assert owner_client.post(reverse("experiments:create"), {**form, "record": "on"}).status_code == 302
    assert owner_client.post(reverse("experiments:create"), form).status_code == 302
    response = api.post(
        "/api/experiments/", {"kind": "search", "tasks": ["robosuite:Stack"], "record": True}, format="json"
    )
    assert response.status_code == 201, response.content
    default = api.post("/api/experiments/", {"kind": "search", "tasks": ["robosuite:Stack"]}, format="json")
    from runs.models import Run

    records = [r.settings["record"] for r in Run.objects.order_by("id")]
    assert records == [True, False, True, False] and default.status_code == 201


# -- pages ----------------------------------------------------------------------------------------------


def test_the_conversation_page_shows_each_turn_with_its_tools_images_and_cost(owner_client, recorded_actor):
    actor, kf = recorded_actor, recorded_actor.keyframe
    response = owner_client.get(reverse("experiments:conversation", args=[actor.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<details class="conv-msg conv-system"><summary>System prompt' in html
    assert html.count('class="conv-turn"') == 4 and 'id="round-0"' in html
    assert "I will search the library first." in html and "stack cube grasp" in html
    assert f'src="/keyframes/{kf.pk}.jpg"' in html  # the keyframe the model looked at, as a thumbnail
    assert '<pre class="code small">obs = get_observation()\nprint(&#x27;top face&#x27;)' in html  # code in <pre>
    assert "received 3 candidates" in html  # the tool's result
    total = round(sum(t.cost_usd for t in actor.agent_turns.all()), 6)
    assert f"${floatformat(total, 4)}</strong>" in html and "recorded in full" in html and KEY not in html
    assert owner_client.get(f"/keyframes/{kf.pk}.jpg")["Content-Type"] == "image/jpeg"


def test_the_conversation_page_says_when_full_requests_were_not_recorded(owner_client, user, tasks):
    actor = experiment(user, record=False).actors.get()
    converse(actor, ClaudeAgent(client=FakeClaude(claude_round()), model=CLAUDE_MODEL))
    html = owner_client.get(reverse("experiments:conversation", args=[actor.pk])).content.decode()
    assert "Full requests and responses were not recorded" in html and "System prompt" not in html
    assert html.count('class="conv-turn"') == 3 and "search_skills" in html


def test_the_actor_page_lists_each_rounds_turns_and_links_the_conversation(owner_client, recorded_actor):
    actor, kf = recorded_actor, recorded_actor.keyframe
    html = owner_client.get(reverse("experiments:actor", args=[actor.pk])).content.decode()
    assert 'id="agent-turns"' in html and f'href="/actors/{actor.pk}/conversation/"' in html
    assert 'id="turn-0-2"' in html and "get_keyframe" in html and f'src="/keyframes/{kf.pk}.jpg"' in html
    assert "received 3 candidates" in html  # the first line of the submission's result


def test_the_json_download_holds_the_turns_for_replay(owner_client, recorded_actor):
    response = owner_client.get(reverse("experiments:conversation_json", args=[recorded_actor.pk]))
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["format"] == "aspire.conversation/1" and data["record"] is True
    assert [(t["round"], t["turn"]) for t in data["turns"]] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    first = data["turns"][0]
    assert first["sent"][0]["role"] == "system" and first["response"]["content"][1]["name"] == "search_skills"
    assert first["usage"]["input_tokens"] == 1200 and first["usage"]["cost_usd"] > 0
    assert data["totals"]["output_tokens"] == 80 + 60 + 40 + 900
    assert KEY not in response.content.decode()


def test_other_users_and_anonymous_visitors_cannot_read_a_conversation(recorded_actor):
    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    kf = recorded_actor.keyframe
    for name in ("experiments:conversation", "experiments:conversation_json", "experiments:actor"):
        url = reverse(name, args=[recorded_actor.pk])
        assert stranger.get(url).status_code == 404
        assert Client().get(url).status_code == 302  # to the login page
    assert stranger.get(f"/keyframes/{kf.pk}.jpg").status_code == 404


def test_a_run_share_link_opens_the_conversation_and_its_images_and_nothing_else(owner_client, user, recorded_actor):
    actor, kf = recorded_actor, recorded_actor.keyframe
    token = make_link(owner_client, "run", actor.run_id).split("/")[2]
    anon = Client()
    run_page = anon.get(f"/s/{token}/").content.decode()
    assert f"/s/{token}/actors/{actor.pk}/conversation/" in run_page
    page = anon.get(f"/s/{token}/actors/{actor.pk}/conversation/")
    html = page.content.decode()
    assert page.status_code == 200 and page["X-Robots-Tag"] == "noindex, nofollow"
    assert f'src="/s/{token}/keyframes/{kf.pk}.jpg"' in html and f'src="/keyframes/{kf.pk}.jpg"' not in html
    assert f"/s/{token}/actors/{actor.pk}/conversation.json" in html and 'id="nav-launch"' not in html
    assert anon.get(f"/s/{token}/keyframes/{kf.pk}.jpg")["Content-Type"] == "image/jpeg"
    download = anon.get(f"/s/{token}/actors/{actor.pk}/conversation.json")
    assert download.status_code == 200 and len(json.loads(download.content)["turns"]) == 4
    # Another run's link, an episode's link, a bad token: nothing.
    other = experiment(user, record=True).actors.get()
    other_token = make_link(owner_client, "run", other.run_id).split("/")[2]
    assert anon.get(f"/s/{other_token}/actors/{actor.pk}/conversation/").status_code == 404
    assert anon.get(f"/s/{other_token}/actors/{actor.pk}/conversation.json").status_code == 404
    assert anon.get(f"/s/{other_token}/keyframes/{kf.pk}.jpg").status_code == 404
    episode_token = make_link(owner_client, "episode", kf.episode_id).split("/")[2]
    assert anon.get(f"/s/{episode_token}/actors/{actor.pk}/conversation/").status_code == 404
    assert anon.get(f"/s/not-a-token/actors/{actor.pk}/conversation/").status_code == 404


# -- in a browser ---------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_conversation_page_in_a_browser(asgi_live_server, browser, django_user_model):
    from runs import services
    from testing.browser import log_in

    services.sync_catalog()

    owner = django_user_model.objects.create_user("ada", password="a-long-test-password")
    run = experiment(owner, record=True)
    actor = run.actors.get()
    kf = keyframe_of(actor)
    agent = ClaudeAgent(client=FakeClaude(claude_round(kf.pk) + claude_round()), model=CLAUDE_MODEL)
    converse(actor, agent, 0)
    converse(actor, agent, 1)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/actors/{actor.pk}/")
    page.click("#conversation-link")
    page.wait_for_selector("#round-1")
    assert page.locator(".conv-turn").count() == 7
    # The system prompt starts collapsed; the thumbnail loaded (a real image, not a broken one).
    assert not page.locator(".conv-system pre").first.is_visible()
    page.wait_for_function(
        "[...document.querySelectorAll('img.conv-thumb')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "Turn 1" in page.inner_text("#turn-0-1") and "search_skills" in page.inner_text("#turn-0-1")
    page.screenshot(path="/tmp/conversation.png", full_page=True)
