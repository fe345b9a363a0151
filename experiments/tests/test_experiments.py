"""Experiments end to end: coordinator, actors and candidate evaluations on the real Celery worker and
Redis broker, the offline agent searching robosuite Stack on real MuJoCo."""

import pytest
from django.urls import reverse

from experiments import coordinator
from experiments.agents import skill_source
from experiments.services import create_experiment, start_experiment
from runs import services, work
from runs.models import Actor, AgentCall, Candidate, Episode, Run, Task
from testing.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Stack seeds where the reference program's open finger lands on the green cube (108, 120) and two
# where it does not: the first candidate scores 50%, the finger-clearance repair 100%.
DEBUG = [103, 108, 102, 120]
HELDOUT = [1, 2]


@pytest.fixture(autouse=True)
def oracle_perception(settings):
    """The failure these tests reproduce (an open finger on the neighbouring cube) is geometry, and their
    assertions are the seeds' measured outcomes; they run in the oracle perception mode so those outcomes
    do not also carry the realistic mode's segmentation noise (covered by worker/tests/
    test_perception_realistic.py and, end to end, by runs/tests/test_two_hosts.py's realistic search)."""
    settings.ASPIRE = {**settings.ASPIRE, "PERCEPTION_MODE": "oracle"}


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw")


@pytest.fixture
def stack(db):
    services.sync_catalog()
    return Task.objects.get(key="robosuite:Stack")


def run_here(candidate_id: int, split: str) -> list:
    """What the worker pool does with a candidate's queued episodes, in this process: run_episode on each
    of its actor's seeds of ``split`` (its settling runs the actor's round barrier)."""
    candidate = Candidate.objects.select_related("actor__task").get(pk=candidate_id)
    settings = coordinator.settings_of(candidate.actor)
    seeds = settings.heldout_seeds if split == Episode.Split.HELDOUT else settings.debug_seeds
    return [work.run_episode(candidate_id, split, seed) for seed in seeds]


def launch(stack, user, **search):
    run = create_experiment(
        kind="search",
        tasks=[stack],
        owner=user,
        agent={"backend": "offline"},
        search={"candidates_per_round": 3, "max_rounds": 3, **search},
        debug_seeds=DEBUG,
        heldout_seeds=HELDOUT,
    )
    start_experiment(run)
    return run


def test_it_refuses_bad_experiments_with_field_messages(client, user, stack):
    client.force_login(user)
    url = reverse("api:experiment-list")
    cases = [
        ({"kind": "nope", "tasks": ["robosuite:Stack"]}, "kind"),
        ({"kind": "search", "tasks": []}, "tasks"),
        ({"kind": "search", "tasks": ["robosuite:Nope"]}, "task"),
        ({"kind": "search", "tasks": ["robosuite:Stack"], "agent": "openai"}, "base_url"),
        ({"kind": "scaling", "tasks": ["robosuite:Stack"]}, "library_sizes"),
        (
            {"kind": "search", "tasks": ["robosuite:Stack"], "debug_seeds": "1-5", "heldout_seeds": "5-9"},
            "heldout_seeds",
        ),
        ({"kind": "search", "tasks": ["robosuite:Stack"], "candidates_per_round": 99}, "candidates_per_round"),
    ]
    for body, field in cases:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 400, body
        assert field in response.json(), (body, response.json())
    assert not Run.objects.exists()


@pytest.mark.slow  # a real search on the Celery worker and MuJoCo: about 100 s on 2 cores
def test_a_search_repairs_the_program_and_evaluates_the_best_on_heldout_seeds(client, user, stack, celery_worker):
    run = launch(stack, user)
    wait_for(lambda: Run.objects.get(pk=run.pk).status in (Run.Status.FINISHED, Run.Status.FAILED), timeout=600)
    run.refresh_from_db()
    actor = run.actors.get()
    assert run.status == Run.Status.FINISHED, (run.error, actor.error)
    table = [(c.round, c.index, c.hypothesis[:80], c.success_rate) for c in actor.candidates.order_by("round", "index")]
    assert actor.status == Actor.Status.FINISHED and actor.stop_reason == "target", table
    assert actor.first_debug_rate == 0.5 and actor.final_debug_rate == 1.0
    best = actor.best
    assert best.round == 1 and "neighbour" in best.hypothesis and best.parent is not None
    assert best.params.get("rule") == "finger_clearance"
    # Round 1 starts with the floor: the round-0 best, unchanged.
    floor = Candidate.objects.get(actor=actor, round=1, index=0)
    assert floor.program == floor.parent.program and "floor" in floor.hypothesis
    # Held-out: the best program once on the held-out seeds, kept apart from its debug episodes.
    assert sorted(best.episodes.filter(split=Episode.Split.HELDOUT).values_list("seed", flat=True)) == HELDOUT
    assert best.success_rate == 1.0 and actor.heldout_rate == best.heldout_rate == run.success_rate
    # Every round's proposals came from a recorded agent call.
    assert AgentCall.objects.filter(actor=actor).count() == 2
    assert all(c.agent_call_id for c in actor.candidates.exclude(index=0, round__gt=0))
    # The repair that flipped seeds was proposed and handed to the skill library's admission.
    assert [s["name"] for s in actor.proposed_skills] == ["Turn the finger line when a pose move is refused"]
    from skills.models import Skill

    skill = Skill.objects.get(title="Turn the finger line when a pose move is refused")
    assert sorted(skill.claimed_seeds) == [108, 120] and sorted(skill.control_seeds) == [102, 103]
    assert (
        skill.provenance == Skill.Provenance.AGENT and skill.source_run_id == run.pk and skill.source_candidate == best
    )
    assert skill.trace_signals.get("statuses") and skill.kind == Skill.Kind.GRASP_CONSTRAINT
    # Admission re-executes both programs on the worker: the repair flips the claimed seeds and breaks
    # no control seed, so the skill is validated (a person approves it later).
    wait_for(lambda: Skill.objects.get(pk=skill.pk).status != Skill.Status.PROPOSED, timeout=600)
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED, skill.status_reason
    # The pages show it.
    client.force_login(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "robosuite:Stack" in page and "50%" in page and "100%" in page
    actor_page = client.get(actor.get_absolute_url()).content.decode()
    assert "Round 1" in actor_page and "neighbour" in actor_page and "Agent calls" in actor_page
    api = client.get(reverse("api:actor-detail", args=[actor.pk])).json()
    assert api["heldout_rate"] == actor.heldout_rate and api["stop_reason"] == "target"


def test_cancelling_stops_the_actors(user, stack, celery_worker):
    run = launch(stack, user, max_rounds=5)
    wait_for(lambda: Candidate.objects.filter(run=run).exists(), timeout=120)
    services.cancel_run(Run.objects.get(pk=run.pk), by=user)
    wait_for(lambda: Actor.objects.get(run=run).status == Actor.Status.CANCELLED, timeout=300)
    rounds = set(Candidate.objects.filter(run=run).values_list("round", flat=True))
    assert rounds == {0}
    assert Run.objects.get(pk=run.pk).status == Run.Status.CANCELLED


def test_redelivered_tasks_resume_without_duplicates(user, stack):
    """A worker killed mid-task gets its task redelivered: running each step twice changes nothing."""
    run = create_experiment(
        kind="search",
        tasks=[stack],
        owner=user,
        agent={"backend": "offline"},
        search={"candidates_per_round": 2, "max_rounds": 1},
        debug_seeds=[101],
        heldout_seeds=[1],
    )
    actor = run.actors.get()
    coordinator.actor_step(actor.pk)
    coordinator.actor_step(actor.pk)  # redelivered: the round already exists
    candidates = list(Candidate.objects.filter(actor=actor))
    assert len(candidates) == 2
    for c in candidates:
        assert all(run_here(c.pk, Episode.Split.DEBUG))
        assert run_here(c.pk, Episode.Split.DEBUG) == [None]  # redelivered: a finished episode is not re-run
    assert Episode.objects.filter(candidate__actor=actor, split=Episode.Split.DEBUG).count() == 2
    actor.refresh_from_db()
    assert actor.status == Actor.Status.PROPOSING  # the round's last episode passed the barrier
    coordinator.actor_step(actor.pk)  # round budget reached -> held-out evaluation of the best
    actor.refresh_from_db()
    assert actor.status == Actor.Status.HELDOUT and actor.stop_reason in ("round_budget", "target")
    run_here(actor.best_id, Episode.Split.HELDOUT)
    coordinator.actor_step(actor.pk)
    actor.refresh_from_db()
    assert actor.status == Actor.Status.FINISHED and actor.heldout_rate is not None


@pytest.mark.slow
def test_an_approved_skill_from_another_task_repairs_the_program_and_counts_as_a_win(user, stack):
    """Scaling run on Stack: with a library of one source task (PickPlaceCan) the offline agent
    retrieves the approved finger-clearance skill and applies it; the use is logged against the agent
    call and settled as a win once the candidate's debug evaluation beats its parent. With a library
    of zero tasks, retrieval returns nothing."""
    from skills.models import Skill, SkillRetrieval, SkillUse
    from worker.agents.offline import finger_line_prelude

    skill = Skill.objects.create(
        name="fingers-clear-neighbours",
        title="Fingers clear the neighbours",
        kind=Skill.Kind.GRASP_CONSTRAINT,
        description="When a pose move is refused because an open finger would land on a nearby object, turn the "
        "fingers 90 degrees about the approach axis and grip across the other faces.",
        symptom="PLANNING_ERROR naming a finger and a neighbouring object on the approach",
        trace_signals={"statuses": ["PLANNING_ERROR"]},
        repair_strategy="retry refused pose moves with the fingers turned 90 degrees and keep that finger line",
        code_sketch=finger_line_prelude(["move_to_pose"]).strip(),
        status=Skill.Status.APPROVED,
        source_task=Task.objects.get(key="robosuite:PickPlaceCan"),
        embodiment="Panda",
    )
    run = create_experiment(
        kind="scaling",
        tasks=[stack],
        owner=user,
        agent={"backend": "offline"},
        search={"candidates_per_round": 3, "max_rounds": 2},
        library_sizes=[0, 1],
        debug_seeds=DEBUG,
        heldout_seeds=HELDOUT,
    )
    empty, one = run.actors.order_by("library_size")
    assert skill_source(empty)("stack the red cube on the green cube", 5) == []
    assert [s["id"] for s in skill_source(one)("stack the red cube on the green cube", 5)] == [skill.pk]

    def finish_round(actor):
        for candidate in Candidate.objects.filter(actor=actor, round=Actor.objects.get(pk=actor.pk).current_round):
            run_here(candidate.pk, Episode.Split.DEBUG)

    coordinator.actor_step(one.pk)
    finish_round(one)
    coordinator.actor_step(one.pk)  # round 1: repairs of the round-0 failures
    applied = Candidate.objects.get(actor=one, round=1, params__skill=skill.pk)
    use = SkillUse.objects.get(skill=skill)
    assert use.candidate == applied and use.outcome == SkillUse.Outcome.PENDING
    assert use.agent_call_id == applied.agent_call_id and use.retrieval is not None
    assert SkillRetrieval.objects.filter(run=run, agent_call_id=applied.agent_call_id).exists()
    finish_round(one)
    use.refresh_from_db()
    applied.refresh_from_db()
    assert applied.success_rate == 1.0 and applied.parent.success_rate == 0.5
    assert use.outcome == SkillUse.Outcome.WIN
    skill.refresh_from_db()
    assert skill.usage_count == 1 and skill.win_count == 1
    # The built-in rule that does the same was not proposed a second time, and nothing new is proposed.
    assert not Candidate.objects.filter(actor=one, round=1, params__rule="finger_clearance").exists()
