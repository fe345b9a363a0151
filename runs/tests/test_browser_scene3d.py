"""The trace page's 3D view in a real browser (Playwright driving Debian's chromium, WebGL on SwiftShader):
three.js loads only when the section is opened, the scene renders the episode's clouds, and clicking a
call picks it out in the 3D view and shades it on the joint chart. Screenshots at 800 and 1280 px."""

import os

import pytest

from testing.browser import log_in

from .scene3d import scene3d_episode

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("ASPIRE_SCENE3D_SCREENSHOTS", "/tmp")
#: The 3D view's heading just below the sticky filter bar.
SCROLL_TO_VIEW = "window.scrollTo(0, document.getElementById('scene3d').getBoundingClientRect().top + scrollY - 90)"


def _three_loaded(page) -> bool:
    return page.evaluate("performance.getEntriesByType('resource').some(e => e.name.includes('/vendor/three/'))")


def test_the_3d_view_renders_and_follows_the_picked_call(asgi_live_server, browser, django_user_model):
    user = django_user_model.objects.create_user("ada", password="a-long-test-password")
    episode = scene3d_episode(user)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/episodes/{episode.pk}/")
    page.wait_for_selector("#calls li.call")
    assert not _three_loaded(page), "three.js loads only when the 3D view is opened"

    page.click("#scene3d > summary")
    page.wait_for_selector('#scene3d[data-state="rendered"]', timeout=30_000)
    assert _three_loaded(page)
    assert int(page.get_attribute("#scene3d", "data-points")) > 1000
    assert page.get_attribute("#scene3d", "data-selected") == ""
    # The canvas holds a picture: more than the background colour.
    distinct = page.evaluate(
        """() => {
          const c = document.querySelector('#scene3d-view canvas');
          const g = c.getContext('webgl2') || c.getContext('webgl');
          const px = new Uint8Array(4 * 64 * 64);
          const x = Math.floor(c.width / 2) - 32, y = Math.floor(c.height / 2) - 32;
          g.readPixels(x, y, 64, 64, g.RGBA, g.UNSIGNED_BYTE, px);
          const seen = new Set();
          for (let i = 0; i < px.length; i += 4) seen.add(px[i] + ',' + px[i + 1] + ',' + px[i + 2]);
          return seen.size;
        }"""
    )
    assert distinct > 20

    # Clicking a motion call picks it in the 3D view.
    calls = page.evaluate("JSON.parse(document.getElementById('page-config').textContent).calls")
    move = next(c["seq"] for c in calls if c["primitive"] == "move_to_pose")
    page.click(f"#call-{move} .call-head .primitive")
    page.wait_for_function(f"document.getElementById('scene3d').dataset.selected === '{move}'")
    assert "move_to_pose" in page.inner_text("#scene3d-now") and "target" in page.inner_text("#scene3d-now")
    page.click("#scene3d-all")
    assert page.get_attribute("#scene3d", "data-selected") == ""
    grasp = next(c["seq"] for c in calls if c["primitive"] == "plan_grasp")
    page.click(f"#call-{grasp} .call-head .primitive")
    page.wait_for_function(f"document.getElementById('scene3d').dataset.selected === '{grasp}'")
    assert "grasps" in page.inner_text("#scene3d-now")
    page.click(f"#call-{grasp} .call-head .primitive")  # fold the call's details away again
    page.evaluate(SCROLL_TO_VIEW)
    page.wait_for_timeout(300)
    page.screenshot(path=os.path.join(SCREENSHOTS, "scene3d-1280.png"))

    # Clicking the joint chart picks the call running at that moment, in the 3D view and in the list.
    page.click("#scene3d-all")
    chart = page.locator("#scene3d-joints").bounding_box()
    page.click("#scene3d-joints", position={"x": chart["width"] * 0.6, "y": 50})
    page.wait_for_function("document.getElementById('scene3d').dataset.selected !== ''")
    picked = int(page.get_attribute("#scene3d", "data-selected"))
    assert "selected" in page.get_attribute(f"#call-{picked}", "class")

    # At 800 px the page is one column and the view fits its width.
    page.set_viewport_size({"width": 800, "height": 1000})
    page.wait_for_timeout(400)
    box = page.locator("#scene3d-view canvas").bounding_box()
    assert 600 < box["width"] <= 800 and box["height"] >= 250
    assert page.evaluate("document.documentElement.scrollWidth") <= 800  # nothing wider than the window
    page.click("#scene3d-all")
    assert page.get_attribute("#scene3d", "data-selected") == ""
    page.evaluate(SCROLL_TO_VIEW)
    page.wait_for_timeout(300)
    page.screenshot(path=os.path.join(SCREENSHOTS, "scene3d-800.png"))
    assert not errors, errors
