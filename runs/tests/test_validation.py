"""Input at the edge of runs: seeds (one validator for every entry point), integer filters and ids, request
bodies (depth, size, malformed JSON) and token authentication. Each case is an input that got a 500, or
was wrongly accepted, before (tracker issue 12)."""

import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from runs.api.filters import ID_RANGE, ParamError, parse_int
from runs.api.parsers import json_depth
from runs.forms import LaunchForm
from runs.models import Run
from worker.sim.catalog import SEED_MAX, SeedError, validate_seeds

# -- the seed validator (worker.sim.catalog, no Django) --------------------------------------------------


@pytest.mark.parametrize(
    "value, seeds",
    [
        ("0-9", list(range(10))),
        ("1,2,5", [1, 2, 5]),
        ("5, 1-3", [1, 2, 3, 5]),
        ([3, 1, 2], [1, 2, 3]),
        ((7,), [7]),
        ([0, SEED_MAX], [0, SEED_MAX]),
        (f"{SEED_MAX}", [SEED_MAX]),
    ],
)
def test_seeds_are_read_from_text_and_lists(value, seeds):
    assert validate_seeds(value) == seeds


@pytest.mark.parametrize(
    "value, message",
    [
        ([-1], "out of range"),
        ([2**32], "out of range"),
        ([2**63], "out of range"),
        ([9223372036854775808], "9223372036854775808 is out of range"),
        ([10**5000], "out of range"),
        ("4294967296", "out of range"),
        ("9223372036854775808", "out of range"),
        ("9" * 5000, "out of range"),
        ("-1", "negative"),
        ("0-4294967296", "out of range"),
        ([1, 1, 1], "more than once: 1"),
        ("1-3,2", "more than once: 2"),
        ("4,4", "more than once: 4"),
        ([True, False], "not an integer"),
        ([1.0], "not an integer"),
        (["1"], "not an integer"),
        ([None], "not an integer"),
        ([[1]], "not an integer"),
        ([], "no seeds"),
        ("", "no seeds"),
        (" , ", "no seeds"),
        ("1,,2", "empty item"),
        ("5-1", "backwards"),
        ("0-10000", "larger than 10000"),
        ("1_000", "cannot read"),
        ("\u0661\u0662", "cannot read"),
        ("1e3", "cannot read"),
        ("2**32", "cannot read"),
        (None, "list of integers"),
        ({"seeds": [1]}, "list of integers"),
        (5, "list of integers"),
    ],
)
def test_bad_seeds_are_refused_with_a_reason(value, message):
    with pytest.raises(SeedError, match=message):
        validate_seeds(value)


def test_the_seed_limit_is_counted_before_anything_is_expanded():
    with pytest.raises(SeedError, match="201 seeds given; at most 200"):
        validate_seeds("0-200", limit=200)
    with pytest.raises(SeedError, match="at most 200"):
        validate_seeds(list(range(201)), limit=200)
    # 430,000 ranges of 10,000: refused from the count, not after building four billion ints.
    huge = ",".join(f"{i * 10_000}-{i * 10_000 + 9_999}" for i in range(400))
    with pytest.raises(SeedError, match="4000000 seeds given"):
        validate_seeds(huge, limit=200)
    assert validate_seeds("0-199", limit=200) == list(range(200))


def test_repeats_can_be_collapsed_where_a_caller_asks():
    assert validate_seeds([3, 1, 1], unique=False) == [1, 3]
    with pytest.raises(SeedError, match="out of range"):
        validate_seeds([1, 2**40], unique=False)


# -- seeds through the launch form and the REST API ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "seeds, message",
    [
        ([-1], "out of range"),
        ([2**32], "out of range"),
        ([2**63], "out of range"),
        ([1, 1, 1], "more than once"),
        ([True], "not an integer"),
        ([1.5], "not an integer"),
        ("1-3,2", "more than once"),
        ("9223372036854775808", "out of range"),
        (list(range(201)), "at most 200"),
        ([], "no seeds"),
        ({"a": 1}, "list of integers"),
    ],
)
def test_the_run_api_refuses_bad_seeds(api, tasks, seeds, message):
    response = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": seeds}, format="json")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["seeds"])
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_run_of_three_seeds_has_three_distinct_seeds(api, tasks):
    response = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": [3, 1, 2]}, format="json")
    assert response.status_code == 201
    assert response.json()["seeds"] == [1, 2, 3]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "seeds, message",
    [("1,1,1", "more than once"), ("4294967296", "out of range"), ("-1", "negative"), ("0-300", "at most 200")],
)
def test_the_launch_form_refuses_bad_seeds(user, tasks, seeds, message):
    form = LaunchForm(
        {"task": "robosuite:Lift", "program_source": "starter", "seeds": seeds, "wall_seconds": 30}, user=user
    )
    assert not form.is_valid()
    assert message in " ".join(form.errors["seeds"])


@pytest.mark.django_db
def test_the_launch_page_shows_the_seed_error(owner_client, tasks):
    response = owner_client.post(
        "/runs/new/", {"task": "robosuite:Lift", "program_source": "starter", "seeds": "1,1,1", "wall_seconds": 30}
    )
    assert response.status_code == 200
    assert b"seeds given more than once: 1" in response.content
    assert not Run.objects.exists()


# -- integer query parameters and ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, bounds, value",
    [("1", ID_RANGE, 1), ("+7", ID_RANGE, 7), (str(2**63 - 1), ID_RANGE, 2**63 - 1), ("-1", (-5, 5), -1)],
)
def test_parse_int_reads_plain_integers_in_range(raw, bounds, value):
    assert parse_int(raw, "run", bounds) == value


@pytest.mark.parametrize(
    "raw, message",
    [
        ("99999999999999999999", "out of range"),
        (str(2**63), "out of range"),
        ("0", "out of range"),
        ("-1", "out of range"),
        ("9" * 100_000, "out of range"),
        ("abc", "not an integer"),
        ("1.5", "not an integer"),
        ("1_000", "not an integer"),
        (" 1", "not an integer"),
        ("\u0661", "not an integer"),
        ("\u00b2", "not an integer"),
        ("", "not an integer"),
    ],
)
def test_parse_int_refuses_the_rest_naming_the_parameter(raw, message):
    with pytest.raises(ParamError, match=f"run: .*{message}"):
        parse_int(raw, "run")


#: Every integer filter of the REST API (runs.api.views, experiments.api.views).
INT_FILTERS = [
    ("/api/candidates/", "run"),
    ("/api/candidates/", "actor"),
    ("/api/candidates/", "round"),
    ("/api/episodes/", "run"),
    ("/api/episodes/", "candidate"),
    ("/api/episodes/", "seed"),
    ("/api/calls/", "episode"),
    ("/api/calls/", "after_seq"),
    ("/api/keyframes/", "episode"),
    ("/api/keyframes/", "call"),
    ("/api/actors/", "run"),
    ("/api/agent-calls/", "run"),
    ("/api/agent-calls/", "actor"),
    ("/api/agent-calls/", "round"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("url, name", INT_FILTERS)
@pytest.mark.parametrize("raw", ["99999999999999999999", str(2**63), "-99999999999999999999", "\u00b2", "1e3"])
def test_integer_filters_answer_400_for_huge_or_non_integers(api, url, name, raw):
    response = api.get(url, {name: raw})
    assert response.status_code == 400
    assert name in response.json()


@pytest.mark.django_db
def test_an_integer_filter_in_range_still_filters(api, traced_run):
    assert api.get("/api/episodes/", {"run": traced_run.pk}).json()["count"] == 1
    assert api.get("/api/episodes/", {"run": 2**63 - 1}).json()["count"] == 0
    assert api.get("/api/episodes/", {"seed": SEED_MAX}).json()["count"] == 0
    assert api.get("/api/calls/", {"after_seq": -1}).json()["count"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/runs/{}/",
        "/api/tasks/{}/",
        "/api/candidates/{}/",
        "/api/episodes/{}/",
        "/api/calls/{}/",
        "/api/keyframes/{}/",
        "/api/keyframes/{}/image/",
        "/api/actors/{}/",
        "/api/agent-calls/{}/",
        "/api/skills/{}/",
        "/runs/{}/",
        "/episodes/{}/",
        "/actors/{}/",
        "/skills/{}/",
        "/keyframes/{}.jpg",
    ],
)
def test_ids_in_paths_that_name_no_row_are_404_however_large(api, owner_client, url):
    client = api if url.startswith("/api/") else owner_client
    for pk in ("99999999999999999999", str(2**63), "9" * 400):
        assert client.get(url.format(pk)).status_code == 404, url.format(pk)


# -- request bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, depth",
    [("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "{{{{"]', 1), ('"\\"[["', 0), ("[" * 500, 500)],
)
def test_json_depth_is_counted_without_recursing(text, depth):
    assert json_depth(text) == depth


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"seeds": ' + "[" * 65 + "]" * 65 + "}",
        "[" * 100_000,
    ],
)
def test_deeply_nested_json_is_400(api, body):
    response = api.post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "levels" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    ["{", "", "{'task': 1}", '{"seeds": NaN}', '{"seeds": [Infinity]}', '{"seeds": [' + "1" * 5000 + "]}"],
)
def test_malformed_json_is_400(api, body):
    response = api.post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_body_that_is_not_utf8_is_400(api):
    response = api.post("/api/runs/", b'{"task": "\xff\xfe"}', content_type="application/json")
    assert response.status_code == 400 and "utf-8" in response.json()["detail"]


@pytest.mark.django_db
def test_json_nested_within_the_limit_is_read(api, tasks):
    body = {"task": "robosuite:Lift", "seeds": [1], "label": "x"}
    nested = json.dumps(body)
    assert api.post("/api/runs/", nested, content_type="application/json").status_code == 201


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_body_over_the_size_limit_is_413(api, tasks):
    big = json.dumps({"task": "robosuite:Lift", "seeds": [1], "program": "x = 1\n" * 5000})
    response = api.post("/api/runs/", big, content_type="application/json")
    assert response.status_code == 413
    assert "10,000 bytes" in response.json()["detail"]
    form = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": "1", "program": "x = 1\n" * 5000})
    assert form.status_code == 413
    assert not Run.objects.exists()


# -- authentication ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Token nope", "Token " + "a" * 40, "Token", "Token a b", "Bearer x"])
def test_a_bad_token_is_401_with_www_authenticate(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/runs/")
    assert response.status_code == 401, (header, response.status_code)
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_no_credentials_is_401_and_a_good_token_or_session_still_works(api, owner_client):
    response = APIClient().get("/api/runs/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert api.get("/api/runs/").status_code == 200
    assert owner_client.get("/api/runs/").status_code == 200
