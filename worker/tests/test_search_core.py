"""Leaderboard, stop rules, eliminated hypotheses, failure summaries (worker.search.core)."""

from worker.search.core import (
    CallSummary,
    CandidateRecord,
    EpisodeSummary,
    SearchSettings,
    eliminated_hypotheses,
    implicated_calls,
    implicated_with_reason,
    leaderboard,
    stop_reason,
    trace_signals,
)


def cand(ref, round, index, successes, seeds=(1, 2, 3, 4), parent=None, hypothesis="h"):
    return CandidateRecord(
        ref, round, index, hypothesis, "code", parent, [EpisodeSummary(s, s in successes, "OK") for s in seeds]
    )


def test_leaderboard_ranks_by_success_and_keeps_the_incumbent_on_ties():
    a, b, c = cand("a", 0, 0, {1, 2}), cand("b", 1, 0, {1, 2}), cand("c", 1, 1, {1, 2, 3})
    assert [x.ref for x in leaderboard([b, c, a])] == ["c", "a", "b"]


def test_stop_rules():
    s = SearchSettings(max_rounds=4, plateau_points=5, target_success=1.0)
    assert stop_reason(s, []) is None
    assert stop_reason(s, [[cand("a", 0, 0, {1, 2, 3, 4})]]) == "target"
    rising = [[cand("a", 0, 0, {1})], [cand("b", 1, 0, {1, 2})], [cand("c", 2, 0, {1, 2, 3})]]
    assert stop_reason(s, rising) is None
    flat = [[cand("a", 0, 0, {1})], [cand("b", 1, 0, {1})], [cand("c", 2, 0, {1})]]
    assert stop_reason(s, flat) == "plateau"
    assert stop_reason(SearchSettings(max_rounds=2), flat[:2]) == "round_budget"


def test_the_fix_loop_stops_when_every_failed_seed_used_its_replays():
    s = SearchSettings(mode="fix_loop", max_rounds=10, max_replays=2)
    r0 = [cand("a", 0, 0, {1, 2})]
    r1 = [cand("b", 1, 0, {1, 2, 3}, parent="a")]  # seed 3 fixed; seed 4 attempted once
    assert stop_reason(s, [r0, r1]) is None
    r2 = [cand("c", 2, 0, {1, 2}, parent="b")]  # seed 4 attempted twice now
    assert stop_reason(s, [r0, r1, r2]) == "replays_exhausted"


def test_a_hypothesis_that_did_not_beat_its_parent_is_eliminated():
    a = cand("a", 0, 0, {1, 2})
    worse = cand("b", 1, 0, {1}, parent="a", hypothesis="lower the approach")
    better = cand("c", 1, 1, {1, 2, 3}, parent="a", hypothesis="rotate the grasp")
    assert [e.split(" (")[0] for e in eliminated_hypotheses([a, worse, better])] == ["lower the approach"]


def test_failures_implicate_failing_calls_the_error_line_and_the_last_calls():
    calls = [CallSummary(i, i, "move_to_pose", "OK", 10 + i) for i in range(1, 8)]
    calls[2].status = "IK_FAILED"
    picked, why = implicated_with_reason(calls, error_line=15)
    assert [c.seq for c in picked] == [3, 5] and "reported a failure" in why
    # A motion that answered NOT_REACHED counts as failed even if its trace status were OK.
    calls[5].result = "NOT_REACHED"
    assert [c.seq for c in implicated_calls(calls, error_line=15)] == [3, 5, 6]
    calls[5].result = "REACHED"
    # No call failed but the program raised: the calls from that line (inside a helper too) and the last ones.
    ok = [CallSummary(i, i, "move_to_pose", "OK", 10 + i, result="REACHED") for i in range(1, 8)]
    ok[1].line, ok[1].stack = 40, [["<module>", 12], ["helper", 40]]
    picked, why = implicated_with_reason(ok, error_line=12)
    assert [c.seq for c in picked] == [2, 6, 7] and "line 12" in why
    # Every call OK, program ended, task not achieved: the last call of each manipulation step.
    steps = [
        CallSummary(1, 1, "get_observation", "OK", 3),
        CallSummary(2, 2, "segment_text_prompt", "OK", 4),
        CallSummary(3, 3, "segment_text_prompt", "OK", 5),
        CallSummary(4, 4, "plan_grasp", "OK", 6),
        CallSummary(5, 5, "move_to_pose", "OK", 7, result="REACHED"),
        CallSummary(6, 6, "close_gripper", "OK", 8, result=0.03),
        CallSummary(7, 7, "move_to_pose", "OK", 9, result="REACHED"),
        CallSummary(8, 8, "get_observation", "OK", 10),
    ]
    picked, why = implicated_with_reason(steps)
    assert [c.seq for c in picked] == [3, 4, 6, 7, 8] and "not achieved" in why
    calls[4] = CallSummary(5, 5, "close_gripper", "GRASP_EMPTY", 15, result=0.002)
    signals = trace_signals(calls, "EXCEPTION", "RuntimeError: missed")
    assert signals["gripper_widths_m"] == [0.002] and signals["exception"] == "RuntimeError"
    assert signals["call_statuses"]["move_to_pose"].count("IK_FAILED") == 1
    assert signals["statuses"] == ["IK_FAILED", "GRASP_EMPTY", "EXCEPTION"] and signals["gripper_width_m"] == 0.002
