"""REST: candidates and episodes of a run, with filters."""

import pytest

pytestmark = pytest.mark.django_db


def test_it_lists_candidates_and_episodes_of_a_run(api, traced_run):
    cands = api.get("/api/candidates/", {"run": traced_run.pk}).json()["results"]
    assert len(cands) == 1 and cands[0]["success_rate"] == 0.0 and cands[0]["program"]
    eps = api.get("/api/episodes/", {"run": traced_run.pk, "success": "false"}).json()["results"]
    assert [(e["seed"], e["status"], e["n_calls"]) for e in eps] == [(101, "EXCEPTION", 2)]
    assert api.get("/api/episodes/", {"run": traced_run.pk, "success": "true"}).json()["count"] == 0
