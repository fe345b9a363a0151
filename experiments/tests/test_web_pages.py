"""The experiment pages through Django's test client."""

import pytest
from django.urls import reverse

from runs.models import Run


@pytest.fixture
def client(client, django_user_model, db):
    """Every page but the share links needs a signed-in user."""
    client.force_login(django_user_model.objects.create_user("researcher", password="pw-not-used"))
    return client


def test_the_experiment_form_launches_a_search_and_refuses_bad_input(client, tasks, django_capture_on_commit_callbacks):
    page = client.get(reverse("experiments:create")).content.decode()
    assert 'name="tasks"' in page and "<optgroup" in page and 'name="debug_seeds"' in page
    bad = client.post(
        reverse("experiments:create"),
        {
            "kind": "search",
            "agent": "offline",
            "tasks": ["robosuite:Stack"],
            "debug_seeds": "1-5",
            "heldout_seeds": "5-9",
            **FORM_DEFAULTS,
        },
    )
    assert bad.status_code == 200 and "in both splits" in bad.content.decode() and not Run.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("experiments:create"),
            {
                "kind": "search",
                "agent": "offline",
                "tasks": ["robosuite:Stack", "robosuite:Lift"],
                "debug_seeds": "101-103",
                **FORM_DEFAULTS,
            },
        )
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert len(callbacks) == 1  # the coordinator task, queued after commit
    assert run.kind == "search" and run.seeds == [101, 102, 103]
    assert sorted(a.task.key for a in run.actors.all()) == ["robosuite:Lift", "robosuite:Stack"]
    assert all(a.settings["heldout_seeds"] == a.task.heldout_seeds for a in run.actors.all())


FORM_DEFAULTS = {
    "candidates_per_round": 8,
    "max_rounds": 5,
    "survivors": 3,
    "target_success": 1.0,
    "plateau_points": 5,
    "max_replays": 3,
    "library_sizes": "0,1",
    "wall_seconds": 120,
}
