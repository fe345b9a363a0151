"""One search round (worker.search.rounds.propose_round), as both drivers run it: what the agent is told,
the floor, the budget; and the local driver's loop around it (worker.search.local.run_search)."""

import pytest

from worker.search.core import CandidateRecord, EpisodeSummary, Proposal, SearchSettings
from worker.search.local import run_search
from worker.search.rounds import FLOOR_HYPOTHESIS, propose_round
from worker.sim.catalog import get_task, starter_source


def cand(ref, round, index, successes, seeds=(101, 102), parent=None, hypothesis="h"):
    return CandidateRecord(
        ref,
        round,
        index,
        hypothesis,
        f"code {ref}",
        parent,
        [EpisodeSummary(s, s in successes, "OK") for s in seeds],
        params={"knob": ref},
    )


class ScriptedAgent:
    """Proposes ``n`` programs a round and remembers every brief it was given."""

    def __init__(self, n):
        self.n = n
        self.briefs = []

    def propose(self, brief, workbench):
        self.briefs.append(brief)
        return [Proposal(f"idea {brief.round}.{i}", f"program {brief.round}.{i}", None, {}) for i in range(self.n)]

    def findings(self, first, best, everything):
        return [{"name": f"from {best.ref}"}]


class FakeWorkbench:
    """Scores a program by its round: round r's candidates succeed on the first r + 1 seeds."""

    def __init__(self):
        self.queries = []
        self.proposed_skills = []
        self.evaluated = []

    def skills(self, query, k=5):
        self.queries.append((query, k))
        return [{"name": "a skill"}]

    def evaluate(self, proposals, round, seeds, split="debug"):
        self.evaluated.append((round, [p.hypothesis for p in proposals], split))
        return [
            CandidateRecord(
                f"r{round}c{i}",
                round,
                i,
                p.hypothesis,
                p.code,
                p.parent,
                [EpisodeSummary(s, n <= round, "OK") for n, s in enumerate(seeds)],
                dict(p.params),
            )
            for i, p in enumerate(proposals)
        ]

    def propose_skill(self, fields):
        self.proposed_skills.append(fields)


@pytest.fixture(scope="module")
def stack():
    return get_task("robosuite:Stack")


def test_round_zero_briefs_the_agent_with_the_task_and_budget_and_has_no_floor(stack):
    agent, bench = ScriptedAgent(5), FakeWorkbench()
    settings = SearchSettings(candidates_per_round=3, debug_seeds=(101, 102))
    proposals = propose_round(agent, bench, stack, settings, [])
    (brief,) = agent.briefs
    assert (brief.task_key, brief.round, brief.k, brief.mode) == ("robosuite:Stack", 0, 3, "search")
    assert brief.debug_seeds == (101, 102) and brief.survivors == [] and brief.eliminated == []
    assert brief.starter == starter_source(stack) and "segment_text_prompt" in brief.starter
    assert brief.skills == [{"name": "a skill"}] and bench.queries == [(stack.instruction, 5)]
    assert [p.hypothesis for p in proposals] == ["idea 0.0", "idea 0.1", "idea 0.2"]  # K at most


def test_later_rounds_carry_the_survivors_and_eliminated_hypotheses_and_keep_the_best_as_the_floor(stack):
    best, parent = cand("b", 0, 1, {101, 102}), cand("a", 0, 0, {101})
    worse = cand("w", 1, 1, {}, parent="a", hypothesis="raise the gripper")
    rounds = [[parent, best], [worse]]
    agent = ScriptedAgent(5)
    settings = SearchSettings(candidates_per_round=3, survivors=2, debug_seeds=(101, 102))
    proposals = propose_round(agent, FakeWorkbench(), stack, settings, rounds)
    (brief,) = agent.briefs
    assert brief.round == 2 and [c.ref for c in brief.survivors] == ["b", "a"]
    assert brief.eliminated == ["raise the gripper (0% (0/2 seeds) vs 50% (1/2 seeds))"]
    floor = proposals[0]
    assert (floor.hypothesis, floor.code, floor.parent) == (FLOOR_HYPOTHESIS, "code b", "b")
    assert floor.params == {"knob": "b"}
    assert [p.hypothesis for p in proposals[1:]] == ["idea 2.0", "idea 2.1"]


def test_a_fix_loop_round_is_one_repair_without_a_floor(stack):
    agent = ScriptedAgent(3)
    settings = SearchSettings(mode="fix_loop", candidates_per_round=8, debug_seeds=(101, 102))
    proposals = propose_round(agent, FakeWorkbench(), stack, settings, [[cand("a", 0, 0, {101})]])
    assert agent.briefs[0].k == 1 and agent.briefs[0].mode == "fix_loop"
    assert [p.hypothesis for p in proposals] == ["idea 1.0"]


def test_an_agent_that_proposes_nothing_fails_the_round(stack):
    with pytest.raises(RuntimeError, match="no candidates for round 1"):
        propose_round(ScriptedAgent(0), FakeWorkbench(), stack, SearchSettings(), [[cand("a", 0, 0, {101})]])


def test_the_local_driver_runs_rounds_until_a_stop_rule_then_the_held_out_evaluation(stack):
    agent, bench = ScriptedAgent(2), FakeWorkbench()
    settings = SearchSettings(candidates_per_round=2, max_rounds=5, debug_seeds=(101, 102), heldout_seeds=(1, 2))
    outcome = run_search(stack, agent, bench, settings, log=lambda line: None)
    assert outcome.stop == "target" and len(outcome.rounds) == 2  # round 1 succeeds on both seeds
    assert bench.evaluated[1] == (1, [FLOOR_HYPOTHESIS, "idea 1.0"], "debug")
    assert bench.evaluated[2] == (2, [outcome.best.hypothesis], "heldout") and outcome.heldout is not None
    assert outcome.proposed_skills == [{"name": f"from {outcome.best.ref}"}]
