"""Rows of experiments for tests (Actor and AgentCall are models of runs/models.py, made by experiments)."""

import factory

from accounts.tests.factories import UserFactory
from experiments.services import create_experiment
from runs.models import AgentCall, Run
from runs.tests.factories import TaskFactory


class ExperimentFactory(factory.django.DjangoModelFactory):
    """An experiment run made by experiments.services.create_experiment (not started): one actor per task,
    searching with the offline agent."""

    class Meta:
        model = Run

    kind = "search"
    tasks = factory.LazyFunction(lambda: [TaskFactory(key="robosuite:Stack")])
    owner = factory.SubFactory(UserFactory)
    team = None
    agent = factory.LazyFunction(lambda: {"backend": "offline"})
    debug_seeds = factory.LazyFunction(lambda: [101, 108])
    heldout_seeds = factory.LazyFunction(lambda: [1])

    @classmethod
    def _create(cls, model_class, **kwargs):
        return create_experiment(**kwargs)


class AgentCallFactory(factory.django.DjangoModelFactory):
    """One conversation of an experiment's agent (by default its run's first actor's) and what it cost."""

    class Meta:
        model = AgentCall

    run = factory.SubFactory(ExperimentFactory)
    actor = factory.LazyAttribute(lambda o: o.run.actors.order_by("id").first())
    round = 0
    backend = "claude"
    model = "claude-test"
    purpose = "propose"
    input_tokens = 1200
    output_tokens = 300
    cache_read_tokens = 800
    cache_write_tokens = 100
    cost_usd = 0.0125
    turns = 3
    duration_s = 4.5
    tool_calls = factory.LazyFunction(lambda: ["list_calls", "get_call", "submit_candidates"])
    retrieved_skills = factory.LazyFunction(lambda: [{"id": 1, "name": "fingers-clear", "score": 0.8}])
