"""bench/transfer.py's parts that need no simulator: the source rule, the library of the first n source
tasks, the per-size summary and the paper's points taken from bench/summary.PAPER."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import summary, transfer  # noqa: E402


def test_a_source_task_is_one_every_step_of_which_a_template_covers():
    assert transfer.covered("put the chocolate pudding in the top drawer of the cabinet and close it")
    assert transfer.covered("open the top drawer of the cabinet and put the bowl in it")
    assert transfer.covered("turn on the stove")
    assert not transfer.covered("put the yellow and white mug in the microwave and close it")
    assert not transfer.covered("turn off the stove")


def test_the_library_of_size_n_holds_the_skills_of_the_first_n_sources():
    sources = [
        {"task": "a", "proposed_skills": [{"name": "s1"}, {"name": "s2"}]},
        {"task": "b", "proposed_skills": []},
        {"task": "c", "proposed_skills": [{"name": "s3"}]},
    ]
    assert transfer.library_of(sources, 0) == []
    assert [s["id"] for s in transfer.library_of(sources, 2)] == ["a#0", "a#1"]
    assert [(s["name"], s["source_task"]) for s in transfer.library_of(sources, 3)][-1] == ("s3", "c")


def test_the_summary_is_the_mean_over_targets_per_suite_and_size():
    def row(size, task, successes):
        episodes = [{"seed": i, "success": s} for i, s in enumerate(successes)]
        return {
            "suite": "libero_10",
            "library_size": size,
            "library_skills": size,
            "task": task,
            "episodes": episodes,
            "success_rate": sum(successes) / len(successes),
        }

    doc = {"evaluations": [row(0, "x", [0, 0]), row(0, "y", [1, 0]), row(1, "x", [1, 1]), row(1, "y", [1, 0])]}
    lines = transfer.summarise(doc)
    assert [(r["library_size"], r["mean_success"], r["tasks"], r["episodes"]) for r in lines] == [
        (0, 0.25, 2, 4),
        (1, 0.75, 2, 4),
    ]


def test_the_papers_points_are_the_published_figures_of_the_summary():
    points = {p["library_tasks"]: p["success"] for p in transfer.PAPER_POINTS}
    assert points == {0: summary.PAPER["zero_shot_long_pro_none"], 90: summary.PAPER["zero_shot_long_pro_library"]}
