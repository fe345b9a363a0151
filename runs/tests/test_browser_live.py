"""In a real browser: watch calls arrive on a trace page opened mid-episode, open deep links, share the
trace with a fresh (logged-out) browser context, revoke the link and be refused."""

import pytest

from runs import services
from runs.models import Episode, PrimitiveCall
from testing.browser import log_in, type_program
from testing.waiting import wait_for

pytestmark = pytest.mark.browser

# Long enough to open the trace page while it runs: each observation renders the cameras (~50 ms).
SLOW_PROGRAM = """
def observe_many(n):
    for i in range(n):
        obs = get_observation(["agentview"])
    return obs

obs = observe_many(70)
found = segment_text_prompt(obs["agentview"]["images"]["rgb"], "red cube")
print("done", len(found))
"""

# Thumbnails past the first 60 load lazily (when scrolled to); the eager ones must all have loaded.
ALL_IMAGES_LOADED = (
    "Array.from(document.querySelectorAll('img.keyframe')).filter(i => i.loading !== 'lazy')"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


def test_it_streams_a_running_trace_deep_links_and_shares_it(
    asgi_live_server, celery_worker, browser, django_user_model
):
    base = asgi_live_server.url
    services.sync_catalog()
    django_user_model.objects.create_user("ada", password="a-long-test-password")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, base, "ada", "a-long-test-password")

    page.goto(f"{base}/runs/new/")
    type_program(page, SLOW_PROGRAM)
    assert page.is_checked("input[name=program_source][value=pasted]")
    page.fill("#id_seeds", "7")
    page.click("#launch-submit")
    page.wait_for_url("**/runs/*/")
    # The episode row arrives over the run's websocket; the page is never reloaded.
    page.wait_for_selector(".episode-row a", timeout=60_000)
    page.click(".episode-row a")
    page.wait_for_url("**/episodes/*/")
    episode = Episode.objects.get()
    config = page.evaluate("JSON.parse(document.getElementById('page-config').textContent)")
    assert config["episode"]["status"] == "RUNNING", "the trace page must be opened while the episode runs"
    shown_at_load = len(config["calls"])

    page.wait_for_function("document.getElementById('episode-status').textContent.trim() === 'OK'", timeout=120_000)
    n_calls = PrimitiveCall.objects.filter(episode=episode).count()
    assert n_calls == 71 and shown_at_load < n_calls
    seqs = page.eval_on_selector_all("#calls li.call", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, n_calls + 1)), "every call once, in order, no gaps"
    assert page.evaluate("Aspire.liveStats.length") >= n_calls - shown_at_load - 1
    assert "segment_text_prompt" in page.inner_text("#calls")
    # The tree groups the helper's calls under it; the module-level call stays at the top.
    assert page.locator("#calls > li.group").count() == 1
    assert "observe_many()" in page.inner_text("#calls > li.group > .group-head")
    assert page.locator("#calls > li.group li.call").count() == 70
    assert page.locator("#calls > li.call").count() == 1
    page.click("#calls > li.group > .group-head")
    assert page.locator("#calls > li.group.collapsed").count() == 1

    # Deep links open the page scrolled to the call, expanded, with its program line marked.
    for link, seq in ((f"{base}/episodes/{episode.pk}/#call-40", 40), (f"{base}/episodes/{episode.pk}/?call=71", 71)):
        page.goto(link)
        page.wait_for_selector(f"#call-{seq}.expanded.selected .call-body")
        in_view = page.evaluate(
            f"(() => {{ const r = document.getElementById('call-{seq}').getBoundingClientRect(); "
            "return r.top > 0 && r.top < innerHeight; })()"
        )
        assert in_view, page.evaluate(
            f"(() => {{ const r = document.getElementById('call-{seq}')"
            ".getBoundingClientRect(); return [r.top, r.height, innerHeight, scrollY, "
            "document.body.scrollHeight, location.href]; })()"
        )
        assert page.locator("#program .line.current").count() == 1

    # j / k walk the calls from the selected one.
    page.keyboard.press("k")
    page.wait_for_selector("#call-70.selected.expanded")
    assert page.locator("#call-71.expanded").count() == 0

    # Filters narrow the tree; the timeline view lists the same calls.
    page.select_option("#filter-primitive", "segment_text_prompt")
    assert page.locator("#calls li.call:not([hidden])").count() == 1
    page.click("#tab-timeline")
    assert page.locator("#timeline .tl-rows .tl-row").count() == 1

    # Share the trace, then open it in a fresh context with no session.
    page.goto(f"{base}/episodes/{episode.pk}/")
    page.click("#share-box summary")
    page.fill("#share-box input[name=label]", "for Bob")
    page.click("#share-create")
    share_url = page.input_value("#share-url")
    assert "/s/" in share_url

    anonymous = browser.new_context()
    guest = anonymous.new_page()
    guest.goto(share_url)
    guest.wait_for_selector("#calls li.call")
    assert guest.locator("#calls li.call").count() == n_calls
    assert guest.locator("#nav-launch").count() == 0 and "Launch" not in guest.inner_text("body")
    assert guest.locator("#share-box").count() == 0
    guest.wait_for_function(ALL_IMAGES_LOADED)
    assert guest.locator("img.keyframe:not([loading=lazy])").count() >= 60
    assert guest.eval_on_selector("img.keyframe", "i => new URL(i.src).pathname.startsWith('/s/')")
    # The token opens only its target: the run page and the launch form still need a login.
    guest.goto(f"{base}/runs/{episode.run_id}/")
    assert "/accounts/login/" in guest.url

    # Revoke it from the owner's page; the guest is refused from then on.
    page.reload()
    page.click("#share-box summary")
    page.click("#share-box .revoke-share")
    page.wait_for_selector(".messages")
    response = guest.goto(share_url)
    assert response.status == 410
    assert guest.locator("#share-refused").is_visible()
    wait_for(lambda: episode.run.share_links.get().revoked_at is not None, timeout=5)
