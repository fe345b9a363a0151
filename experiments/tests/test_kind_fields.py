"""The experiment form takes only the chosen kind's search settings (experiments.forms.KIND_FIELDS):
a zero-shot run is one candidate for one round whatever the hidden K and rounds boxes hold, and the
estimate beside the launch button counts that way too."""

import pytest
from django.urls import reverse

from experiments.forms import ExperimentForm, measured_throughput
from runs.models import Run

FORM = {
    "tasks": ["robosuite:Lift"],
    "agent": "offline",
    "candidates_per_round": "8",
    "max_rounds": "5",
    "survivors": "3",
    "target_success": "1.0",
    "plateau_points": "5",
    "max_replays": "3",
    "library_sizes": "0,1,2,4",
    "wall_seconds": "60",
}


@pytest.mark.parametrize(
    "kind, expected",
    [("search", 25 * 8 * 5 + 100), ("fix_loop", 25 * 1 * 5 + 100), ("zero_shot", 25 + 100), ("scaling", 4 * 1100)],
)
def test_it_estimates_each_kind_from_its_own_fields(tasks, kind, expected):
    form = ExperimentForm({**FORM, "kind": kind})
    assert form.is_valid(), form.errors
    assert form.episode_estimate() == expected


def test_a_hidden_fields_bad_value_is_ignored_and_zero_shot_runs_one_candidate(
    client, django_user_model, tasks, django_capture_on_commit_callbacks
):
    client.force_login(django_user_model.objects.create_user("kinds", password="pw-not-used"))
    data = {**FORM, "kind": "zero_shot", "candidates_per_round": "", "survivors": "999"}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("experiments:create"), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = Run.objects.get()
    assert run.kind == "zero_shot" and run.settings["k"] == 1 and run.settings["rounds"] == 1


def test_the_time_estimate_reads_the_measured_throughput():
    import json

    from experiments.forms import THROUGHPUT_FILE

    doc = json.loads(THROUGHPUT_FILE.read_text())  # what bench/eval_throughput.py measured last
    tp = measured_throughput()
    assert tp["one_worker"] == doc["one_worker"]["episodes_per_s"] > 0
    assert tp["two_workers"] == doc["two_workers"]["episodes_per_s"] > 0
    assert tp["task"] == doc["task"] == "robosuite:Lift"
