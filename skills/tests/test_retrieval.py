"""Hybrid retrieval: sentence embeddings (bundled all-MiniLM-L6-v2, offline) + BM25, filters, logging, caching."""

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from runs.models import Candidate, Run
from runs.tests.factories import TaskFactory
from skills import embeddings, retrieval
from skills.content import SkillInputError
from skills.models import Skill, SkillEmbedding, SkillRetrieval
from skills.retrieval import retrieve_skills
from skills.usage import record_skill_use

from .factories import SkillFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_index():
    retrieval.reset_index()
    embeddings.encode_query.cache_clear()
    yield
    retrieval.reset_index()


@pytest.fixture
def library():
    cube = SkillFactory(
        name="cube-top-face",
        title="Cube localisation from the top face",
        description="Find the red cube on the table from its top-face points and the table height.",
        trace_signals={"statuses": ["GRASP_EMPTY"], "primitives": ["close_gripper"]},
    )
    drawer = SkillFactory(
        name="drawer-pull",
        title="Pull a drawer open by its handle",
        kind=Skill.Kind.MOTION_PRIMITIVE,
        description="Seat the fingers behind the drawer handle and pull along the drawer axis.",
        symptom="The drawer stays shut.",
        trace_signals={"statuses": ["NOT_REACHED"]},
    )
    prompt = SkillFactory(
        name="cube-prompt-fallback",
        title="Prompt fallback for the cube",
        kind=Skill.Kind.PERCEPTION_PROMPT,
        description="Try several prompts for the cube when segmentation finds nothing.",
        symptom="segment_text_prompt returns no detections.",
        trace_signals={"statuses": ["NO_DETECTION"], "primitives": ["segment_text_prompt"], "detections": [0, 0]},
    )
    generic = SkillFactory(
        name="trace-triage",
        title="Trace triage",
        kind=Skill.Kind.DEBUGGING_WORKFLOW,
        embodiment="",
        description="Debug from the first failing call of the trace.",
        trace_signals={},
    )
    proposed = SkillFactory(
        name="cube-proposed",
        status=Skill.Status.PROPOSED,
        description="Lift the red cube off the table with a better grasp.",
    )
    sawyer = SkillFactory(
        name="cube-sawyer", embodiment="Sawyer", description="Lift the red cube off the table on a Sawyer."
    )
    return {s.name: s for s in (cube, drawer, prompt, generic, proposed, sawyer)}


def names(result):
    return [h.name for h in result.hits]


def test_the_bm25_matrix_scores_exactly_as_rank_bm25():
    docs = [
        "lift the red cube off the table",
        "pull the drawer handle",
        "red red cube grasp_empty close_gripper",
        "table height from points",
        "the the the",
    ]
    corpus = [retrieval.tokenize(d) for d in docs]
    vocab, matrix = retrieval._bm25_matrix(corpus)
    index = retrieval.LibraryIndex.__new__(retrieval.LibraryIndex)
    index.vocab, index.bm25 = vocab, matrix
    for query in ("red cube table", "grasp_empty drawer drawer", "nothing matches", "close gripper"):
        tokens = retrieval.tokenize(query)
        expected = BM25Okapi(corpus).get_scores(tokens)
        assert np.allclose(index._bm25_scores(tokens, np.arange(len(docs))), expected), query
    assert retrieval.tokenize("GRASP_EMPTY on the close_gripper") == [
        "grasp_empty",
        "grasp",
        "empty",
        "close_gripper",
        "close",
        "gripper",
    ]


def test_it_ranks_the_related_skill_first_and_filters_by_status_embodiment_and_kind(library):
    task = TaskFactory(key="robosuite:Lift")
    result = retrieve_skills(task=task)  # the task's instruction; embodiment Panda from the catalog
    assert result.hits[0].name == "cube-top-face", [h.as_dict() for h in result.hits]
    assert {"cube-proposed", "cube-sawyer"}.isdisjoint(names(result))  # not approved / another robot
    assert "trace-triage" in names(result)  # a skill for any robot is a candidate for every robot
    assert all(h.score >= later.score for h, later in zip(result.hits, result.hits[1:]))
    assert result.hits[0].dense > 0.3 and result.hits[0].bm25 > 0 and result.hits[0].signature == 0.0

    assert names(retrieve_skills(instruction="lift the cube", statuses=["proposed"])) == ["cube-proposed"]
    assert names(retrieve_skills(instruction="lift the cube", embodiment="Sawyer"))[0] == "cube-sawyer"
    assert names(retrieve_skills(instruction="open the drawer", kinds=["motion_primitive"])) == ["drawer-pull"]
    assert len(retrieve_skills(instruction="lift the cube", k=2).hits) == 2


def test_failure_signals_steer_retrieval_during_repair(library):
    instruction = "Lift the red cube off the table."
    empty_hand = retrieve_skills(
        instruction=instruction,
        embodiment="Panda",
        signals={"statuses": ["GRASP_EMPTY"], "primitives": ["close_gripper"], "gripper_width_m": 0.001},
    )
    assert empty_hand.hits[0].name == "cube-top-face" and empty_hand.hits[0].signature == 1.0
    nothing_seen = retrieve_skills(
        instruction=instruction,
        embodiment="Panda",
        signals={"statuses": ["NO_DETECTION"], "primitives": ["segment_text_prompt"], "detections": 0},
    )
    assert nothing_seen.hits[0].name == "cube-prompt-fallback" and nothing_seen.hits[0].signature == 1.0
    assert "NO_DETECTION: perception found nothing" in nothing_seen.retrieval.query


def test_each_retrieval_is_logged_with_its_query_scores_and_links(library):
    run = Run.objects.create(task=TaskFactory(key="robosuite:Lift"), seeds=[1])
    candidate = Candidate.objects.create(run=run, program="x", program_hash="x")
    result = retrieve_skills(
        instruction="lift the cube", embodiment="Panda", run=run, candidate=candidate, agent_call_id=9
    )
    logged = SkillRetrieval.objects.get()
    assert logged == result.retrieval and logged.run == run
    assert logged.candidate == candidate and logged.agent_call_id == 9
    assert [r["skill"] for r in logged.results] == [h.skill_id for h in result.hits]
    assert set(logged.results[0]) == {"skill", "name", "version", "score", "dense", "bm25", "signature"}
    assert logged.embodiment == "Panda" and logged.statuses == ["approved"] and logged.latency_ms > 0
    retrieve_skills(instruction="lift the cube", log_use=False)
    assert SkillRetrieval.objects.count() == 1


def test_embeddings_are_stored_once_and_recomputed_when_the_text_changes(library, monkeypatch):
    encoded = []
    real = embeddings.encode

    def counting(texts, **kw):
        encoded.append(len(texts))
        return real(texts, **kw)

    real_one = embeddings.encode_one

    def counting_one(text):  # a query: one text
        encoded.append(1)
        return real_one(text)

    monkeypatch.setattr(embeddings, "encode", counting)
    monkeypatch.setattr(embeddings, "encode_one", counting_one)
    retrieve_skills(instruction="lift the cube")
    assert encoded == [6, 1]  # every skill once, then the query
    assert SkillEmbedding.objects.count() == 6
    index = retrieval.current_index()

    record_skill_use(library["cube-top-face"])  # usage counters do not touch the index
    retrieve_skills(instruction="lift the cube")
    assert encoded == [6, 1] and retrieval.current_index() is index  # and a repeated query is not embedded again

    drawer = library["drawer-pull"]
    drawer.description = "Push the drawer closed with a closed hand."
    drawer.save()
    retrieve_skills(instruction="close the drawer")
    assert encoded == [6, 1, 1, 1]  # only the changed skill, then the new query
    stored = np.frombuffer(bytes(SkillEmbedding.objects.get(skill=drawer).vector), dtype="<f4")
    assert np.allclose(stored, real([drawer.retrieval_text()])[0], atol=1e-5)


def test_an_empty_library_returns_nothing():
    assert retrieve_skills(instruction="lift the cube").hits == []


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({}, "instruction"),
        ({"instruction": "x", "k": 0}, "k"),
        ({"instruction": "x", "statuses": ["approved", "nope"]}, "statuses"),
        ({"instruction": "x", "kinds": ["teleport"]}, "kinds"),
        ({"signals": {"colour": "red"}}, "signals"),
        ({"signals": {"gripper_width_m": "wide"}}, "signals"),
    ],
)
def test_bad_retrieval_input_names_the_field(kwargs, field):
    with pytest.raises(SkillInputError) as info:
        retrieve_skills(**kwargs)
    assert info.value.field == field
    assert not SkillRetrieval.objects.exists()


@pytest.mark.parametrize(
    "text",
    [
        "pick up the red cube",
        "GRASP_EMPTY after close_gripper: the fingers closed on nothing above the bowl " * 12,  # past 256 tokens
        "",
    ],
)
def test_a_query_is_embedded_as_the_library_texts_are(text):
    """encode_query's single-text path gives the vector encode() gives the same text in a batch."""
    one = embeddings.encode_query(text)
    batch = embeddings.encode(["another text first", text])[1]
    assert one.shape == batch.shape == (embeddings.dimension(),) and one.dtype == np.float32
    assert np.allclose(one, batch, atol=1e-5)
    assert abs(float(np.linalg.norm(one)) - 1.0) < 1e-5
