"""/plots/'s "Transfer (benchmark)" section, drawn from bench/transfer.py's results file: the chart with the
paper's points labelled, "not measured yet" without a file, and no error on a malformed one."""

import json

import pytest

from experiments import plots

RESULTS = {
    "benchmark": "transfer",
    "commit": "abc123",
    "measured_at": "2026-12-01T00:00:00Z",
    "summary": [
        {"suite": "libero_10", "library_size": 0, "skills": 0, "tasks": 10, "episodes": 500, "mean_success": 0.02},
        {"suite": "libero_10", "library_size": 4, "skills": 3, "tasks": 10, "episodes": 500, "mean_success": 0.06},
    ],
    "paper": {
        "suite": "LIBERO-Long-Pro",
        "points": [
            {"library_tasks": 0, "success": 0.047, "label": "no library"},
            {"library_tasks": 90, "success": 0.31, "label": "library of the 90 LIBERO-90 tasks"},
        ],
    },
}


@pytest.fixture
def results_file(tmp_path, settings):
    path = tmp_path / "transfer.json"
    settings.TRANSFER_RESULTS_PATH = str(path)
    return path


def test_the_transfer_section_draws_success_against_library_size(owner_client, results_file):
    results_file.write_text(json.dumps(RESULTS))
    html = owner_client.get("/plots/").content.decode()
    section = html.split("Transfer (benchmark)")[1]
    assert "<svg" in section and "libero_10 (measured)" in section
    assert "mean zero-shot success 6.0% over 10 tasks" in section  # a measured point's hover text
    assert "published figures (LIBERO-Long-Pro), not measured here" in section
    assert "paper, no library: 0.047" in section and "paper, library of the 90 LIBERO-90 tasks: 0.310" in section


def test_without_a_results_file_the_section_says_not_measured_yet(owner_client, results_file):
    html = owner_client.get("/plots/").content.decode()
    assert "Not measured yet" in html.split("Transfer (benchmark)")[1]


@pytest.mark.parametrize("text", ["{not json", json.dumps({"summary": [{"suite": "x"}]}), json.dumps([1, 2])])
def test_a_malformed_results_file_is_logged_not_raised(owner_client, results_file, text, caplog):
    results_file.write_text(text)
    response = owner_client.get("/plots/")
    assert response.status_code == 200
    assert "could not be read" in response.content.decode().split("Transfer (benchmark)")[1]
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_the_default_path_is_under_the_project(settings):
    settings.TRANSFER_RESULTS_PATH = None
    assert plots.transfer_results_path() == settings.BASE_DIR / "bench" / "results" / "transfer.json"


def test_a_file_measured_with_quick_settings_says_so(owner_client, results_file):
    quick = dict(RESULTS, protocol={"k": 1, "max_rounds": 1, "debug_seeds_limit": 1, "heldout_seeds_limit": 1})
    results_file.write_text(json.dumps(quick))
    section = owner_client.get("/plots/").content.decode().split("Transfer (benchmark)")[1]
    assert "a check of the pipeline, not the protocol" in section
    results_file.write_text(json.dumps(dict(RESULTS, protocol={"k": 8, "max_rounds": 5})))
    section = owner_client.get("/plots/").content.decode().split("Transfer (benchmark)")[1]
    assert "not the protocol" not in section
