"""The trace page's episode player in a real browser (Playwright driving Debian's chromium): clicking a
call seeks the video to the call's start, frame steps move one frame, playing highlights the current call."""

import os

import pytest

from testing.browser import log_in

from .playback import recorded_episode

pytestmark = pytest.mark.browser

SCREENSHOT = os.environ.get("ASPIRE_PLAYBACK_SCREENSHOT", "/work/notes/playback.png")


def test_clicking_a_call_seeks_the_recording(asgi_live_server, browser, django_user_model):
    user = django_user_model.objects.create_user("ada", password="a-long-test-password")
    _, ep = recorded_episode(user)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/episodes/{ep}/")
    page.wait_for_selector("#calls li.call")
    # The browser decodes the MP4 (H.264) far enough to know its length: the scrubber spans the video.
    page.wait_for_function("document.getElementById('player-video').readyState >= 2", timeout=20_000)
    assert page.evaluate("document.getElementById('player-video').duration") > 2
    player = page.evaluate("JSON.parse(document.getElementById('player-config').textContent)")
    fps, spans = player["fps"], {s[0]: s[1] for s in player["calls"]}
    assert spans[3] > 0
    page.click("#call-3 .call-head")
    page.wait_for_function("Math.abs(document.getElementById('player-video').currentTime - %f) < 0.05" % spans[3])
    assert "playing" in page.get_attribute("#call-3", "class")
    assert page.inner_text("#player-now") == "Now: #3 close_gripper"
    before = page.evaluate("document.getElementById('player-video').currentTime")
    page.click("#player-next")
    after = page.evaluate("document.getElementById('player-video').currentTime")
    assert after == pytest.approx(before + 1 / fps, abs=0.03)  # one frame on
    # Playing from the start moves the highlight from call to call.
    page.click("#call-2 .call-head")
    page.click("#player-play")
    page.wait_for_function("document.querySelector('#call-4.playing') !== null", timeout=15_000)
    page.click("#player-play")  # pause for the picture
    page.wait_for_timeout(300)
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=False)
