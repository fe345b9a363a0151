"""The pages through Django's test client, with a real Celery worker on the real Redis broker."""

import pytest
from django.urls import reverse

from runs import services
from runs.models import Episode, Keyframe, Run, Task
from testing.waiting import wait_for


@pytest.fixture
def client(client, django_user_model, db):
    """Every page but the share links needs a signed-in user."""
    client.force_login(django_user_model.objects.create_user("researcher", password="pw-not-used"))
    return client


def test_it_sends_anonymous_visitors_to_the_login_page(db):
    from django.test import Client

    for url in (reverse("runs:list"), reverse("runs:create"), reverse("runs:detail", args=[1])):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_it_lists_runs_and_offers_the_launch_form(client, tasks):
    assert "No runs yet" in client.get(reverse("runs:list")).content.decode()
    page = client.get(reverse("runs:create")).content.decode()
    assert "robosuite:Lift" in page and "Built-in starter program" in page


@pytest.mark.parametrize(
    "data, message",
    [
        ({"program_source": "starter", "seeds": "9-1"}, "runs backwards"),
        ({"program_source": "starter", "seeds": "a,b"}, "cannot read seed"),
        ({"program_source": "pasted", "program": "   ", "seeds": "1"}, "Paste a program"),
        ({"program_source": "starter", "seeds": "1-500"}, "at most 200"),
        ({"program_source": "starter", "seeds": "1", "wall_seconds": "0"}, "greater than or equal to 1"),
    ],
)
def test_bad_launch_input_is_shown_on_the_form_and_creates_nothing(client, tasks, data, message):

    data = {"task": "robosuite:Lift", "wall_seconds": "60", **data}
    response = client.post(reverse("runs:create"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Run.objects.exists()


def test_unknown_ids_are_404(client, tasks):
    for name in ("runs:detail", "runs:episode", "runs:keyframe"):
        assert client.get(reverse(name, args=[999])).status_code == 404


def test_a_run_launched_from_the_form_runs_on_the_worker_and_its_trace_is_shown(client, tasks, celery_worker):
    from runs.models import Task

    task = Task.objects.get(key="robosuite:Lift")
    response = client.post(
        reverse("runs:create"), {"task": task.key, "program_source": "starter", "seeds": "1-2", "wall_seconds": "60"}
    )
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    wait_for(lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert run.success_rate == 1.0 and run.n_episodes == 2

    page = client.get(run.get_absolute_url()).content.decode()
    assert "100%" in page and page.count('class="episode-row"') == 2

    episode = Episode.objects.filter(run=run).order_by("seed").first()
    trace = client.get(episode.get_absolute_url()).content.decode()
    for primitive in ("get_observation", "segment_text_prompt", "close_gripper", "move_to_pose"):
        assert primitive in trace
    keyframe = Keyframe.objects.filter(episode=episode).first()
    assert keyframe.get_absolute_url() in trace
    image = client.get(keyframe.get_absolute_url())
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"


@pytest.mark.django_db
def test_the_launch_form_takes_a_task_split_by_name():
    from runs.forms import LaunchForm

    services.sync_catalog()
    libero = Task.objects.filter(benchmark="libero").first()
    for text, expected in (("debug", libero.debug_seeds), ("held-out", libero.heldout_seeds), ("3,5-6", [3, 5, 6])):
        form = LaunchForm(
            {"task": libero.key, "program_source": "pasted", "program": "x = 1", "seeds": text, "wall_seconds": "60"}
        )
        assert form.is_valid(), form.errors
        assert form.cleaned_data["seeds"] == expected
    form = LaunchForm(
        {"task": libero.key, "program_source": "pasted", "program": "x = 1", "seeds": "debugg", "wall_seconds": "60"}
    )
    assert not form.is_valid() and "seeds" in form.errors
