"""In a real browser (Playwright driving Debian's chromium): log in, launch from the form, watch the run
page update live, open a trace page with its keyframes."""

import pytest

from runs import services
from testing.browser import log_in

pytestmark = pytest.mark.browser


def test_launch_watch_and_read_a_trace(asgi_live_server, celery_worker, browser, django_user_model):
    services.sync_catalog()
    django_user_model.objects.create_user("ada", password="a-long-test-password")
    page = browser.new_page()
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/runs/new/")
    page.fill("#id_seeds", "4")
    page.click("#launch-submit")
    page.wait_for_url("**/runs/*/")
    # The run page follows the worker over its websocket, without reloading.
    page.wait_for_function("document.querySelector('#run-status').textContent.trim() === 'FINISHED'", timeout=120_000)
    # Seed 4 is one of the task's held-out seeds: the rate says which split it is over.
    assert page.inner_text("#success-rate").lower() == "held-out 100% (1 of 1)"
    page.click(".episode-row a")
    page.wait_for_selector("#calls li.call")
    assert page.locator("#calls li.call").count() >= 8
    assert "close_gripper" in page.inner_text("#calls")
    page.wait_for_function(
        "Array.from(document.images).filter(i => i.classList.contains('keyframe'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("img.keyframe").count() >= 4


def test_the_launch_form_browses_the_catalog(asgi_live_server, browser, django_user_model):
    services.sync_catalog()
    django_user_model.objects.create_user("ada", password="a-long-test-password")
    page = browser.new_page()
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/runs/new/")
    assert page.locator("#id_task optgroup").count() >= 10  # robosuite plus the LIBERO and LIBERO-Pro suites
    assert "Lift" in page.inner_text("#task-info")
    page.fill("#task-filter", "libero_10 basket")
    visible = page.eval_on_selector_all("#id_task option", "os => os.filter(o => !o.hidden).map(o => o.value)")
    assert visible and all(key.startswith("libero:libero_10") for key in visible), visible
    page.select_option("#id_task", visible[0])
    info = page.inner_text("#task-info")
    assert "basket" in info.lower() and "Debug seeds: 51-65" in info and "Held-out seeds: 1-50" in info
    assert page.input_value("#id_seeds") == "51-53"
    # An unknown task in the link falls back to the default; a known one is preselected.
    page.goto(f"{asgi_live_server.url}/runs/new/?task={visible[0]}")
    assert page.input_value("#id_task") == visible[0] and page.input_value("#id_seeds") == "51-53"
