"""In a real browser (Playwright driving Debian's chromium): launch from the form, watch the run page,
open a trace page with its keyframes."""

import os
import shutil

import pytest

from runs import services

pytestmark = pytest.mark.browser
# Playwright's sync API runs an event loop in this thread; the ORM calls here are ordinary sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: scripts/install.sh --test installs it")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield b
        b.close()


def test_launch_watch_and_read_a_trace(live_server, celery_worker, browser):
    services.sync_catalog()
    page = browser.new_page()
    page.goto(f"{live_server.url}/runs/new/")
    page.fill("#id_seeds", "4")
    page.click("#launch-submit")
    page.wait_for_url("**/runs/*/")
    # The run page refreshes itself until the worker is done.
    page.wait_for_function("document.querySelector('#run-status').textContent.trim() === 'FINISHED'", timeout=120_000)
    assert page.inner_text("#success-rate").startswith("100%")
    page.click(".episode-row a")
    page.wait_for_selector("#calls li.call")
    assert page.locator("#calls li.call").count() >= 8
    assert "close_gripper" in page.inner_text("#calls")
    page.wait_for_function("Array.from(document.images).filter(i => i.classList.contains('keyframe')).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("img.keyframe").count() >= 4
