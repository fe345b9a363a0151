"""Fuzz: no input gets a 5xx. Every operation of the REST API's OpenAPI schema (drf-spectacular, the same
document /api/schema/ serves) gets malformed query parameters, ids in its path and, when it takes one,
malformed JSON and form bodies; the HTML pages that read query parameters or form posts get the same.

Hypothesis generates the inputs: huge, negative and non-ASCII integers, unicode and NUL text, deep and wide
JSON, wrong types, NaN and 5,000-digit numbers, seed lists. Deterministic (derandomize) and sized to run in
about a minute; ASPIRE_FUZZ_EXAMPLES raises the examples per operation for a longer search.

A view that raises is re-raised by the test client (the test fails with its traceback); an answered 5xx
fails the assertion, which prints the request.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("ASPIRE_FUZZ_EXAMPLES", 10))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the operations, from the OpenAPI schema ------------------------------------------------------------


def api_operations() -> list[tuple[str, str, dict]]:
    """(method, path template, operation) of every operation in the schema, e.g. ("get", "/api/runs/{id}/")."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path, op)
        for path, item in sorted(schema["paths"].items())
        for method, op in sorted(item.items())
        if method in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = api_operations()
OPERATION_IDS = [f"{m.upper()} {p}" for m, p, _ in OPERATIONS]


def query_names(op: dict) -> list[str]:
    return [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]


def path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def body_properties(op: dict) -> dict:
    """The JSON request body's properties (resolved from components), or {} when it takes none."""
    content = op.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    if not ref:
        return {}
    name = ref.rsplit("/", 1)[-1]
    return SCHEMA_COMPONENTS.get(name, {}).get("properties", {})


def _components() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


SCHEMA_COMPONENTS = _components()


# -- values -------------------------------------------------------------------------------------------

HUGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 10**20, -(2**63) - 1, 10**4000]
ODD_TEXT = [
    "",
    " ",
    "99999999999999999999",
    "-99999999999999999999",
    "9" * 5000,
    "1e3",
    "1.5",
    "1_000",
    " 1",
    "0x10",
    "\u0661\u0662",  # Arabic-indic digits: int() reads them
    "\u00b2",  # superscript two: isdigit() but not int()
    "NaN",
    "Infinity",
    "null",
    "true",
    "\x00",
    "a\x00b",
    "%00",
    "../../etc/passwd",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "robosuite:Lift",
    "debug",
    "heldout",
    "1-3,2",
    "0-4294967296",
    "\U0001f916" * 50,
]

ints = st.one_of(st.sampled_from(HUGE_INTS), st.integers(min_value=-(2**70), max_value=2**70))
texts = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=40))
query_values = st.one_of(ints.map(str), texts, st.lists(texts, min_size=2, max_size=3))


def json_values():
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        ints,
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=12,
    )


seed_lists = st.lists(ints, max_size=6)

# Bodies that are not valid JSON, or are JSON no parser should recurse into (sent as raw text).
RAW_BODIES = [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 10_000 + "1" + "}" * 10_000,
    "[" * 65 + "]" * 65,
    '{"seeds": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"seeds": "[[[[", "task": "robosuite:Lift"}',
    "[" * 100_000,
    "{",
    "",
    "null",
    "NaN",
    '{"seeds": NaN}',
    '{"seeds": [1e999]}',
    '{"seeds": [' + "1" * 5000 + "]}",
    '{"seeds": [' + "1" * 4000 + "]}",
    '{"task": "robosuite:Lift", "seeds": [9223372036854775808]}',
    '{"kind": "search", "tasks": ["robosuite:Lift"], "heldout_seeds": [9223372036854775808]}',
    '"\\ud800"',
    "\ufeff{}",
]
RAW_BYTES = [b"\xff\xfe\x00", b'{"a": "\xc3\x28"}']

#: Field values that get a body past the first required-field checks, so the fuzzed fields are reached.
PLAUSIBLE = {
    "task": "robosuite:Lift",
    "kind": "search",
    "tasks": ["robosuite:Stack"],
    "seeds": [101],
    "agent": "offline",
}


# -- data that the ids can point at ------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """A staff user (so the review endpoints run too) with a traced program run, an experiment with an
    agent call, and a skill; their ids are the valid ids the fuzzer mixes in. Made once for the module
    (the catalog sync is the slow part) inside a transaction rolled back at its end; each test's own
    changes are rolled back by its ``db`` transaction, nested in this one."""
    from django.db import transaction

    from accounts.tests.factories import UserFactory
    from experiments.tests.factories import AgentCallFactory, ExperimentFactory
    from runs import services
    from runs.tests.factories import (
        CallRecordFactory,
        EpisodeResultFactory,
        KeyframeRecordFactory,
        RunFactory,
        StartedEpisodeFactory,
    )
    from skills.tests.factories import SkillFactory

    with django_db_blocker.unblock(), transaction.atomic():
        user = UserFactory(username="fuzz-user", is_staff=True)
        services.sync_catalog()
        run = RunFactory(owner=user, seeds=[101])
        sink, ep = StartedEpisodeFactory(run=run)
        sink.call_recorded(ep, CallRecordFactory(seq=1, keyframes=[KeyframeRecordFactory(path="fuzz/after.jpg")]))
        sink.episode_finished(ep, EpisodeResultFactory(n_calls=1))
        experiment = ExperimentFactory(owner=user)
        call = AgentCallFactory(run=experiment)
        skill = SkillFactory()
        episode = run.episodes.get()
        ids = {
            run.pk,
            experiment.pk,
            episode.pk,
            episode.candidate_id,
            episode.calls.get().pk,
            episode.keyframes.get().pk,
            call.pk,
            call.actor_id,
            skill.pk,
        }
        yield {"ids": sorted(ids), "run": run, "user": user}
        transaction.set_rollback(True)


@pytest.fixture
def api(world, db):
    """The world's user through the REST API with a token, as scripts call it."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=world['user'])[0].key}")
    return client


@pytest.fixture
def owner_client(world, db):
    """The world's user signed in to the pages."""
    from django.test import Client

    client = Client()
    client.force_login(world["user"])
    return client


def path_ids(world) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(world["ids"]).map(str), ints.map(str), texts.filter(bool))


def fill(path: str, values: dict) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def assert_no_5xx(response, what: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for {what[:500]}: {response.content[:300]!r}"


def _describe(method, url, params=None, body=None):
    return f"{method.upper()} {url} params={params!r} body={str(body)[:200]!r}"


# -- the REST API ---------------------------------------------------------------------------------------


def test_the_fuzzed_operations_are_every_api_route():
    """The schema (what is fuzzed) covers every route under /api/ the URL resolver knows."""
    from django.urls import URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern)

    routes = {r for r in walk(get_resolver().url_patterns) if r.startswith("api/")}
    # Router patterns as the schema spells them: "^runs/(?P<pk>[^/.]+)/cancel/$" -> "/api/runs/{id}/cancel/".
    documented = {re.sub(r"{\w+}", "{}", p) for _, p, _ in OPERATIONS}
    missing = []
    for route in routes:
        if "format" in route or route in ("api/", "api/schema/", "api/docs/", "api/redoc/"):
            continue  # format suffixes, the browsable root and the schema/doc pages
        spelled = "/" + re.sub(r"\(\?P<\w+>[^)]*\)|<\w+:\w+>", "{}", route).replace("^", "").replace("$", "")
        if spelled not in documented:
            missing.append(route)
    assert not missing, f"API routes missing from the OpenAPI schema (so never fuzzed): {missing}"
    assert len(OPERATIONS) >= 20


@pytest.mark.parametrize("method, path, op", OPERATIONS, ids=OPERATION_IDS)
def test_api_operation_never_answers_5xx(api, world, method, path, op):
    names = query_names(op) + ["page", "page_size", "format", "run", "zz"]
    props = body_properties(op)

    @FUZZ
    @given(
        ids=st.fixed_dictionaries({n: path_ids(world) for n in path_names(path)}),
        params=st.dictionaries(st.sampled_from(names), query_values, min_size=1, max_size=4),
        body=st.one_of(
            st.dictionaries(st.sampled_from(sorted(props) or ["x"]), json_values(), max_size=5).map(
                lambda d: {**{k: v for k, v in PLAUSIBLE.items() if k in props}, **d}
            ),
            st.fixed_dictionaries({"seeds": seed_lists, "task": st.just("robosuite:Lift")}),
            st.fixed_dictionaries(
                {"kind": st.just("search"), "tasks": st.just(["robosuite:Stack"]), "heldout_seeds": seed_lists}
            ),
            json_values(),
        ),
        as_form=st.booleans(),
    )
    def check(ids, params, body, as_form):
        url = fill(path, ids)
        if method == "get":
            response = api.get(url, params)
        elif as_form and isinstance(body, dict):
            flat = {k: v if isinstance(v, (str, int, float)) else json.dumps(v) for k, v in body.items()}
            flat = {k: v for k, v in flat.items() if "\x00" not in str(k)}
            response = getattr(api, method)(url + "?" + _query(params), flat, format="multipart")
        else:
            response = getattr(api, method)(url, json.dumps(body), content_type="application/json")
        assert_no_5xx(response, _describe(method, url, params, body))

    check()


#: The deterministic sweep's values: the integers around each column's limits, and text that int() or a
#: database reads differently from what a person meant (the inputs that gave 500s are among them).
CORPUS = [
    "-1",
    "0",
    str(2**31),
    str(2**32),
    str(2**63),
    "99999999999999999999",
    str(-(2**63) - 1),
    "9" * 5000,
    "",
    "1.5",
    "1_000",
    " 1",
    "\u0661\u0662",
    "\u00b2",
    "NaN",
    "a\x00b",
    "' OR 1=1 --",
    "\U0001f916" * 50,
    "1-3,2",
]


@pytest.mark.parametrize("method, path, op", OPERATIONS, ids=OPERATION_IDS)
def test_api_operation_takes_every_hostile_value(api, world, method, path, op):
    """A sweep, not a search: each query parameter of the operation, then each id in its path, gets every
    value of CORPUS in turn (the corpus has the inputs that gave 500s before: ?run=99999999999999999999)."""
    valid = {n: str(world["run"].pk) for n in path_names(path)}
    call = getattr(api, method)
    for name in query_names(op) + ["page", "page_size"]:
        for value in CORPUS:
            # One row a page (unless the page size is what is swept): the parsing is under test, not paging.
            url = fill(path, valid) + "?" + _query({"page_size": 1, name: value})
            assert_no_5xx(call(url), _describe(method, url))
    for name in path_names(path):
        for value in CORPUS:
            if value.strip() in ("", ".", "..") or "/" in value:
                continue  # another route, or none
            url = fill(path, {**valid, name: value})
            assert_no_5xx(call(url), _describe(method, url))


def _query(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params, doseq=True)


WRITES = [o for o in OPERATIONS if o[0] != "get"]


@pytest.mark.parametrize("method, path, op", WRITES, ids=[f"{m.upper()} {p}" for m, p, _ in WRITES])
def test_api_operation_refuses_malformed_bodies_with_4xx(api, world, method, path, op):
    url = fill(path, {n: str(world["run"].pk) for n in path_names(path)})
    for raw in RAW_BODIES + RAW_BYTES:
        response = getattr(api, method)(url, raw, content_type="application/json")
        assert_no_5xx(response, _describe(method, url, body=raw))
        if op.get("requestBody"):
            assert 400 <= response.status_code < 500, _describe(method, url, body=raw)


# -- the HTML pages -------------------------------------------------------------------------------------

#: Pages and the query parameters they read (and a few they do not).
PAGES = {
    "/": ["status", "mine", "page"],
    "/runs/new/": ["task"],
    "/experiments/new/": [],
    "/compare/": ["a", "b", "seed", "split"],
    "/plots/": ["run"],
    "/skills/": ["status", "kind", "embodiment", "q", "page"],
    "/account/": [],
    "/runs/{id}/": [],
    "/runs/{id}/health.json": ["share"],
    "/episodes/{id}/": [],
    "/actors/{id}/": [],
    "/skills/{id}/": [],
    "/skills/{id}/export.md": [],
    "/keyframes/{id}.jpg": [],
    "/s/{id}/": [],
    # The API's own pages, outside the schema: its root, the schema document and the two doc viewers.
    "/api/": ["format"],
    "/api/schema/": ["format", "lang", "version"],
    "/api/docs/": [],
    "/api/redoc/": [],
}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_takes_every_hostile_value(owner_client, world, path):
    """The sweep of test_api_operation_takes_every_hostile_value over a page's parameters and path id."""
    valid = {n: str(world["run"].pk) for n in path_names(path)}
    for name in PAGES[path]:
        for value in CORPUS:
            url = fill(path, valid) + "?" + _query({name: value})
            assert_no_5xx(owner_client.get(url), _describe("get", url))
    for name in path_names(path):
        for value in CORPUS:
            if value.strip() in ("", ".", "..") or "/" in value:
                continue
            url = fill(path, {**valid, name: value})
            assert_no_5xx(owner_client.get(url), _describe("get", url))


@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_never_answers_5xx(owner_client, world, path):
    names = PAGES[path] + ["zz"]

    @FUZZ
    @given(
        ids=st.fixed_dictionaries({n: path_ids(world) for n in path_names(path)}),
        params=st.dictionaries(st.sampled_from(names), query_values, max_size=4),
    )
    def check(ids, params):
        url = fill(path, ids)
        response = owner_client.get(url, params)
        assert_no_5xx(response, _describe("get", url, params))

    check()


FORMS = {
    "/runs/new/": ["task", "program_source", "program", "seeds", "wall_seconds", "team"],
    "/experiments/new/": [
        "kind",
        "tasks",
        "suite",
        "agent",
        "model",
        "base_url",
        "candidates_per_round",
        "max_rounds",
        "survivors",
        "target_success",
        "plateau_points",
        "max_replays",
        "library_sizes",
        "debug_seeds",
        "heldout_seeds",
        "wall_seconds",
        "team",
    ],
}
FORM_DEFAULTS = {
    "/runs/new/": {"task": "robosuite:Lift", "program_source": "starter", "seeds": "101", "wall_seconds": "30"},
    "/experiments/new/": {
        "kind": "search",
        "tasks": "robosuite:Stack",
        "agent": "offline",
        "candidates_per_round": "2",
        "max_rounds": "1",
        "survivors": "1",
        "target_success": "1",
        "plateau_points": "5",
        "max_replays": "1",
        "wall_seconds": "30",
    },
}


@pytest.mark.parametrize("path", sorted(FORMS))
def test_form_post_never_answers_5xx(owner_client, world, path):
    @FUZZ
    @given(fields=st.dictionaries(st.sampled_from(FORMS[path]), query_values, max_size=5))
    def check(fields):
        data = {**FORM_DEFAULTS[path], **fields}
        response = owner_client.post(path, data)
        assert_no_5xx(response, _describe("post", path, body=data))

    check()
