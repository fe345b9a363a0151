"""The launch forms in a real browser (Playwright, Debian's chromium): the program editor (starter program
per task, API docs, live policy check) and the experiment form (per-kind fields, episode and time
estimate), at 800 and 1280 px wide, with screenshots to /work/notes/editor_*.png."""

import json
from pathlib import Path

import pytest

from runs import services
from testing.browser import log_in

pytestmark = pytest.mark.browser
NOTES = Path("/work/notes")


def _page(browser, server, django_user_model, width):
    services.sync_catalog()
    django_user_model.objects.get_or_create(username="ada")[0].set_password("a-long-test-password")
    user = django_user_model.objects.get(username="ada")
    user.set_password("a-long-test-password")
    user.save()
    page = browser.new_page(viewport={"width": width, "height": 1000})
    log_in(page, server.url, "ada", "a-long-test-password")
    return page


def test_the_program_editor_shows_the_starter_and_checks_the_policy_as_you_type(
    asgi_live_server, browser, django_user_model
):
    page = _page(browser, asgi_live_server, django_user_model, 1280)
    page.goto(f"{asgi_live_server.url}/runs/new/")
    page.wait_for_selector(".program-editor .cm-content")
    assert "segment_text_prompt" in page.inner_text(".program-editor .cm-content")  # Lift's starter
    assert page.is_checked("#id_recording")  # a run launched from the browser records its episodes
    page.wait_for_function("document.getElementById('program-check').textContent.includes('OK')")
    page.select_option("#id_task", "robosuite:Stack")
    page.wait_for_function("document.querySelector('.program-editor .cm-content').innerText.includes('PLACE_PROMPT')")
    assert page.is_checked("input[name=program_source][value=starter]")
    # Type a forbidden import on line 1: the check names it inline and in the summary.
    page.click(".program-editor .cm-content")
    page.keyboard.press("Control+Home")
    page.keyboard.type("import os\n")
    page.wait_for_function("document.getElementById('program-check').textContent.includes('line 1: import of os')")
    page.wait_for_selector(".cm-lintRange-error")
    assert page.is_checked("input[name=program_source][value=pasted]")
    # Completion from the API reference (the docstrings, as JSON).
    page.keyboard.type("move_to_po")
    page.wait_for_selector(".cm-tooltip-autocomplete")
    assert "move_to_pose" in page.inner_text(".cm-tooltip-autocomplete")
    page.keyboard.press("Enter")  # accept: line 2 now starts with move_to_pose
    # Hover docs: the primitive's signature and docstring.
    page.mouse.move(0, 0)
    page.hover(".cm-line >> nth=1", position={"x": 25, "y": 6})
    page.wait_for_selector(".cm-tooltip-hover .cm-api-doc")
    doc = page.inner_text(".cm-tooltip-hover .cm-api-doc")
    assert doc.startswith("move_to_pose(") and "Returns" in doc
    page.screenshot(path=str(NOTES / "editor_launch_hover_1280.png"))
    page.mouse.move(0, 0)
    # The editor keeps a fixed height and scrolls inside (a long program does not stretch the page).
    height = page.evaluate("document.querySelector('.cm-editor.program-editor').getBoundingClientRect().height")
    assert 300 < height < 600, height
    page.screenshot(path=str(NOTES / "editor_launch_1280.png"), full_page=True)
    # Launching it is refused with the line, and no run is made.
    page.click("#launch-submit")
    page.wait_for_selector(".field-program .errors")
    assert "line 1: import of os is not allowed" in page.inner_text(".field-program .errors")
    assert "import os" in page.inner_text(".program-editor .cm-content")  # what was typed is kept
    page.set_viewport_size({"width": 800, "height": 1000})
    page.screenshot(path=str(NOTES / "editor_launch_refused_800.png"), full_page=True)
    from runs.models import Run

    assert not Run.objects.exists()


@pytest.mark.parametrize("width", [800, 1280])
def test_the_experiment_form_shows_the_kinds_fields_and_estimates_episodes_and_time(
    asgi_live_server, browser, django_user_model, width
):
    page = _page(browser, asgi_live_server, django_user_model, width)
    page.goto(f"{asgi_live_server.url}/experiments/new/")
    page.select_option("#id_tasks", ["robosuite:Lift"])
    visible = lambda name: page.is_visible(f".field-{name}")  # noqa: E731
    # Search: K, rounds, survivors; no fix-loop replays, no library sizes; offline agent: no model box.
    page.select_option("#id_kind", "search")
    assert visible("candidates_per_round") and visible("survivors") and not visible("max_replays")
    assert not visible("library_sizes") and not visible("model") and not visible("base_url")
    assert visible("recording") and page.is_checked("#id_recording")
    # Blank seeds: each task's own split, 25 x K x rounds + 100 for robosuite.
    assert page.get_attribute("#episode-estimate", "data-estimate") == str(25 * 8 * 5 + 100)
    seconds = int(page.get_attribute("#time-estimate", "data-seconds"))
    measured = Path(__file__).resolve().parents[2] / "bench" / "results" / "eval_throughput.json"
    one_worker = json.loads(measured.read_text())["one_worker"]["episodes_per_s"]  # bench/eval_throughput.py
    assert seconds == round(1100 / one_worker)
    assert "on one worker" in page.inner_text("#time-estimate") and "eval_throughput" in page.inner_text(
        "#time-estimate"
    )
    page.fill("#id_candidates_per_round", "4")
    page.wait_for_function("document.getElementById('episode-estimate').dataset.estimate === '600'")
    page.screenshot(path=str(NOTES / f"editor_experiment_search_{width}.png"), full_page=True)
    # Fix loop: one repair a round, replays shown, K hidden.
    page.select_option("#id_kind", "fix_loop")
    assert visible("max_replays") and not visible("candidates_per_round") and not visible("survivors")
    assert page.get_attribute("#episode-estimate", "data-estimate") == str(25 * 1 * 5 + 100)
    # Zero-shot: one candidate, one round, no search settings at all.
    page.select_option("#id_kind", "zero_shot")
    assert not any(visible(n) for n in ("candidates_per_round", "max_rounds", "survivors", "library_sizes"))
    assert page.get_attribute("#episode-estimate", "data-estimate") == str(25 + 100)
    # Scaling: library sizes, one actor per size.
    page.select_option("#id_kind", "scaling")
    assert visible("library_sizes") and visible("candidates_per_round")
    assert page.get_attribute("#episode-estimate", "data-estimate") == str(4 * (25 * 4 * 5 + 100))
    page.select_option("#id_agent", "openai")
    assert visible("model") and visible("base_url")
    page.screenshot(path=str(NOTES / f"editor_experiment_scaling_{width}.png"), full_page=True)
