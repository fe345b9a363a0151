"""The launch form's program editor: the starter program shown, the API reference as JSON from the
docstrings, the live policy check, and programs that fail the sandbox policy refused before launch
(form and REST API) with the line and the reason, creating no run."""

import pytest
from django.urls import reverse

from runs.models import Run, Task

BAD = "obs = get_observation()\nimport os\nprint(os.environ)\n"


@pytest.fixture
def client(client, django_user_model, db):
    client.force_login(django_user_model.objects.create_user("editor", password="pw-not-used"))
    return client


def test_it_shows_the_starter_program_in_the_program_box(client, tasks):
    page = client.get(reverse("runs:create")).content.decode()
    lift = Task.objects.get(key="robosuite:Lift")
    first_line = lift.starter_program.strip().splitlines()[0]
    assert first_line.replace('"', "&quot;").replace("'", "&#x27;") in page
    assert 'data-check-url="/runs/editor/check.json"' in page and "aspire-codemirror.js" in page


def test_it_refuses_a_pasted_program_that_fails_the_policy_naming_the_line(client, tasks):
    data = {"task": "robosuite:Lift", "program_source": "pasted", "program": BAD, "seeds": "1", "wall_seconds": "60"}
    response = client.post(reverse("runs:create"), data)
    assert response.status_code == 200
    text = response.content.decode()
    assert "fails the sandbox policy: line 2: import of os is not allowed" in text
    assert not Run.objects.exists()


def test_an_edited_starter_program_is_launched_as_written_and_checked(client, tasks):
    """Without JS the radio stays on "starter"; text that is no task's starter counts as edited."""
    data = {"task": "robosuite:Lift", "program_source": "starter", "program": BAD, "seeds": "1", "wall_seconds": "60"}
    response = client.post(reverse("runs:create"), data)
    assert "line 2: import of os is not allowed" in response.content.decode()
    assert not Run.objects.exists()


def test_the_starter_sent_back_as_a_browser_submits_it_stays_the_starter(client, tasks):
    """A form post carries the textarea with CRLF line endings: the unchanged starter is still the starter."""
    starter = Task.objects.get(key="robosuite:Lift").starter_program
    data = {"task": "robosuite:Lift", "program_source": "starter", "seeds": "1", "wall_seconds": "60"}
    client.post(reverse("runs:create"), {**data, "program": starter.replace("\n", "\r\n")})
    run = Run.objects.get()
    assert run.candidates.get().origin == "starter" and run.candidates.get().program == starter


def test_the_api_refuses_a_program_that_fails_the_policy_with_a_400(api, tasks):
    response = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": "1", "program": BAD}, format="json")
    assert response.status_code == 400
    assert "line 2: import of os is not allowed" in response.json()["program"][0]
    syntax = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": "1", "program": "x = (1,\n"}, format="json")
    assert syntax.status_code == 400 and "SyntaxError" in syntax.json()["program"][0]
    assert not Run.objects.exists()


def test_it_checks_a_program_as_you_type(client, tasks):
    url = reverse("runs:editor-check")
    bad = client.post(url, {"program": BAD}, content_type="application/json").json()
    assert bad["ok"] is False
    assert bad["problems"][0] == {
        "line": 2,
        "col": 7,
        "message": bad["problems"][0]["message"],
        "severity": "error",
    } and bad["problems"][0]["message"].startswith("import of os is not allowed")
    dunder = client.post(url, {"program": "x = get_observation.__closure__"}, content_type="application/json").json()
    assert "dunder" in dunder["problems"][0]["message"]
    starter = Task.objects.get(key="robosuite:Lift").starter_program
    assert client.post(url, {"program": starter}, content_type="application/json").json() == {
        "ok": True,
        "problems": [],
    }
    arity = "def locate(cam):\n    return cam\n\nlocate('agentview', 'cube')\n"
    warned = client.post(url, {"program": arity}).json()  # a form-encoded body works too
    assert warned["ok"] is True and warned["problems"] == [
        {"line": 4, "col": 0, "message": "locate() takes 1 positional argument but 2 were given", "severity": "warning"}
    ]
    assert client.post(url, "{", content_type="application/json").status_code == 400
    assert client.post(url, {"program": 3}, content_type="application/json").status_code == 400
    assert client.get(url).status_code == 405


def test_the_editor_endpoints_need_a_signed_in_user(db):
    from django.test import Client

    for name in ("runs:editor-check", "runs:editor-starter", "runs:editor-api"):
        assert Client().get(reverse(name)).status_code == 302


def test_it_serves_starter_programs_and_the_api_reference_from_the_docstrings(client, tasks):
    from worker.robot.api import RobotAPI

    stack = client.get(reverse("runs:editor-starter"), {"task": "robosuite:Stack"}).json()
    assert stack["program"] == Task.objects.get(key="robosuite:Stack").starter_program and stack["arms"] == 1
    assert client.get(reverse("runs:editor-starter"), {"task": "nope"}).status_code == 404
    ref = client.get(reverse("runs:editor-api"), {"arms": "1", "profile": "native"}).json()
    by_name = {e["name"]: e for e in ref["primitives"]}
    expected = {e["name"]: e for e in RobotAPI.reference(1, "native")}
    assert set(by_name) == set(expected)
    assert by_name["move_to_pose"]["doc"] == expected["move_to_pose"]["doc"] != ""
    assert by_name["move_to_pose"]["signature"].startswith("move_to_pose(")
    assert client.get(reverse("runs:editor-api"), {"arms": "3"}).status_code == 400
    assert client.get(reverse("runs:editor-api"), {"profile": "x"}).status_code == 400
