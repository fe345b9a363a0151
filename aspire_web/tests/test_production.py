"""The embedded default is production-safe: DEBUG off under `up`'s settings with static files still served,
error pages that never show a traceback or the URL list (JSON under /api/), 503 for a database that is
away, no page that fetches anything from another host, and logs without tracebacks for expected outages."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import redis.exceptions
from django.core.exceptions import PermissionDenied
from django.db import OperationalError
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path

from aspire_web import logfilters
from aspire_web.urls import urlpatterns as site_patterns

ROOT = Path(__file__).resolve().parents[2]
DEBUG_MARKERS = ("Traceback", "Using the URLconf", "urlpatterns", "DEBUG = True", "Request Method:", "django/core")


# -- a URLconf with views that fail, beside the site's own patterns ---------------------------------------


def _boom(request):
    raise RuntimeError("a bug in a view")


def _locked(request):
    raise OperationalError("database is locked")


def _forbidden(request):
    raise PermissionDenied("no")


def _ok(request):
    return HttpResponse("ok")


urlpatterns = [
    path("test-boom/", _boom),
    path("api/test-boom/", _boom),
    path("test-locked/", _locked),
    path("api/test-locked/", _locked),
    path("test-forbidden/", _forbidden),
    path("api/test-forbidden/", _forbidden),
    *site_patterns,
]
handler400 = "aspire_web.views.bad_request"
handler403 = "aspire_web.views.permission_denied"
handler404 = "aspire_web.views.page_not_found"
handler500 = "aspire_web.views.server_error"


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def anon():
    return Client(raise_request_exception=False)


def assert_no_debug_output(body: str):
    for marker in DEBUG_MARKERS:
        assert marker not in body, marker


# -- `up`'s settings ------------------------------------------------------------------------------------

LOCAL_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
call_command("collectstatic", interactive=False, verbosity=0)
c = Client(HTTP_HOST="127.0.0.1")
css = c.get("/static/css/app.css")
icon = c.get("/favicon.ico", follow=True)
missing = c.get("/no-such-page/")
docs_js = c.get("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js")
print(json.dumps({
    "debug": settings.DEBUG, "hosts": settings.ALLOWED_HOSTS,
    "css": [css.status_code, css.get("Content-Type")],
    "icon": [icon.status_code, icon.get("Content-Type"), icon.redirect_chain],
    "missing": [missing.status_code, missing.content.decode()],
    "docs_js": docs_js.status_code,
    "collected": (settings.STATIC_ROOT / "favicon.svg").exists(),
    "other_host": Client(HTTP_HOST="evil.example").get("/no-such-page/").status_code,
}))
"""


def run_local(tmp_path, **env):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aspire_web.settings.local",
        "ASPIRE_VAR_DIR": str(tmp_path),
        **env,
    }
    if "ASPIRE_DEBUG" not in env:
        environment.pop("ASPIRE_DEBUG", None)
    out = subprocess.run(
        [sys.executable, "-c", LOCAL_PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_up_settings_run_without_debug_and_still_serve_static_files(tmp_path):
    found = run_local(tmp_path, ASPIRE_ALLOWED_HOSTS="robot-lab.local, 10.0.0.7")
    assert found["debug"] is False
    assert {"localhost", "127.0.0.1", "robot-lab.local", "10.0.0.7"} <= set(found["hosts"])
    assert found["css"][0] == 200 and found["css"][1].startswith("text/css")
    status, content_type, chain = found["icon"]
    assert status == 200 and content_type.startswith("image/svg+xml") and chain[0][0].endswith("/static/favicon.svg")
    assert found["docs_js"] == 200  # the API docs' own assets, from the sidecar, not a CDN
    assert found["collected"]
    assert found["missing"][0] == 404
    assert "Not found" in found["missing"][1]
    assert_no_debug_output(found["missing"][1])
    assert found["other_host"] == 400  # a Host not in ALLOWED_HOSTS


def test_aspire_debug_1_turns_debug_on(tmp_path):
    assert run_local(tmp_path, ASPIRE_DEBUG="1")["debug"] is True


# -- error answers ---------------------------------------------------------------------------------------


def test_a_missing_page_is_a_plain_404_and_json_under_the_api(db, anon):
    page = anon.get("/no/such/page/")
    assert page.status_code == 404 and "Not found" in page.content.decode()
    assert_no_debug_output(page.content.decode())
    api = anon.get("/api/no/such/endpoint/")
    assert api.status_code == 404 and api.json() == {"detail": "Not found.", "code": "not_found"}


def test_a_bug_answers_a_500_page_without_a_traceback(db, anon, failing_urls):
    page = anon.get("/test-boom/")
    assert page.status_code == 500
    body = page.content.decode()
    assert "Something went wrong" in body and "a bug in a view" not in body
    assert_no_debug_output(body)
    api = anon.get("/api/test-boom/")
    assert api.status_code == 500 and api.json()["code"] == "server_error"


def test_forbidden_and_bad_host_answers(db, anon, failing_urls):
    page = anon.get("/test-forbidden/")
    assert page.status_code == 403 and "Forbidden" in page.content.decode()
    assert anon.get("/api/test-forbidden/").json()["code"] == "permission_denied"
    bad = anon.get("/runs/", HTTP_HOST="evil.example")
    assert bad.status_code == 400 and "Bad request" in bad.content.decode()
    assert_no_debug_output(bad.content.decode())
    assert anon.get("/api/runs/", HTTP_HOST="evil.example").json()["code"] == "bad_request"


def test_a_locked_database_answers_503_with_retry_after(db, anon, failing_urls, caplog):
    page = anon.get("/test-locked/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "try again" in page.content.decode()
    api = anon.get("/api/test-locked/")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api.json()["code"] == "service_unavailable"
    assert "database unavailable during GET /test-locked/" in caplog.text


def test_the_real_api_answers_503_when_its_queries_fail(db, api, monkeypatch):
    """DRF re-raises a database error; the middleware turns it into 503 (JSON) instead of a 500."""
    from runs.api import views as run_views

    def unreachable(self):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(run_views.RunViewSet, "get_queryset", unreachable)
    response = api.get("/api/runs/")
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"


def test_a_database_error_outside_a_view_is_a_503_too(db, anon, monkeypatch):
    """Raised in a middleware, where process_exception never sees it: the 500 handler answers 503."""
    from django.contrib.messages.middleware import MessageMiddleware

    def locked(self, request):
        raise OperationalError("database is locked")

    monkeypatch.setattr(MessageMiddleware, "process_request", locked)
    response = anon.get("/accounts/login/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert anon.get("/api/runs/").json()["code"] == "service_unavailable"


def test_an_error_page_that_needs_the_absent_database_is_a_503(db, anon, monkeypatch):
    """A 404 whose page cannot load the signed-in user (the session table is locked) answers 503, not a
    500 and not a traceback."""
    from django.contrib.sessions.backends.db import SessionStore

    def locked(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SessionStore, "load", locked)
    anon.cookies["sessionid"] = "x" * 32
    response = anon.get("/no/such/page/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert_no_debug_output(response.content.decode())


# -- nothing external on any page -----------------------------------------------------------------------

EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|srcset|data)\s*=\s*["']?\s*(?P<attr>(?:https?:)?//[^"'\s>]+))"""
    r"""|(?:url\(\s*["']?(?P<url>(?:https?:)?//[^"')\s]+))"""
    r"""|(?:@import\s+["'](?P<imp>(?:https?:)?//[^"']+))""",
    re.IGNORECASE,
)


def external_urls(text: str) -> list[str]:
    """Every absolute URL (http://, https://, //host) that an src/href/action attribute, a CSS url() or an
    @import in ``text`` points at."""
    return [next(g for g in m.groups() if g) for m in EXTERNAL.finditer(text)]


def test_the_external_url_check_finds_what_it_must():
    sample = (
        '<link href="https://fonts.googleapis.com/css2?x"><script src=//cdn.redoc.ly/r.js></script>'
        "<style>@import 'https://a.example/x.css'; b { background: url(http://b.example/i.png) }</style>"
        '<a href="/runs/">x</a><img src="/static/favicon.svg">'
    )
    assert external_urls(sample) == [
        "https://fonts.googleapis.com/css2?x",
        "//cdn.redoc.ly/r.js",
        "https://a.example/x.css",
        "http://b.example/i.png",
    ]


def parameterless_routes(patterns=None, prefix="") -> list[str]:
    """Every route of the site's URL patterns that takes no parameter (admin left to its index)."""
    found = []
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(p.pattern)
        if "<" in route or "(?P" in route or route.startswith("^") or "^" in str(p.pattern):
            continue
        if isinstance(p, URLResolver):
            if route.startswith("admin/"):
                found.append("/admin/")
                continue
            found += parameterless_routes(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            found.append("/" + route)
    return sorted(set(found))


@pytest.fixture
def site_content(db, user, tasks):
    """Rows for every kind of page: a finished traced run with a keyframe, a second candidate, an
    experiment, the seed skills, a share link."""
    from django.core.management import call_command

    from experiments.tests.factories import AgentCallFactory
    from runs.tests.factories import (
        CallRecordFactory,
        EpisodeResultFactory,
        KeyframeRecordFactory,
        RunFactory,
        StartedEpisodeFactory,
    )
    from sharing import services as sharing

    user.is_staff = user.is_superuser = True
    user.save()
    run = RunFactory(owner=user, seeds=[101], n_candidates=2)
    sink, ep = StartedEpisodeFactory(run=run)
    sink.call_recorded(ep, CallRecordFactory(seq=1, keyframes=[KeyframeRecordFactory()]))
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=1, success=False, status="EXCEPTION"))
    AgentCallFactory(run__owner=user)
    call_command("load_seed_skills", verbosity=0)
    _, token = sharing.create_link(user, "run", run.pk)
    return {"run": run, "share": token}


def crawl(client, starts, limit=400) -> dict[str, str]:
    """HTML and CSS of every same-site page reachable from ``starts`` by GET links (up to ``limit``)."""
    seen, queue, pages = set(), deque(starts), {}
    while queue and len(pages) < limit:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        kind = response.get("Content-Type", "")
        if response.status_code != 200 or not ("text/html" in kind or "text/css" in kind):
            continue
        text = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
        pages[url] = text
        for m in re.finditer(r"""(?:href|src)\s*=\s*["']([^"'#]+)""", text):
            link = urljoin(url, m.group(1))
            parts = urlsplit(link)
            if parts.netloc or parts.scheme:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            skip = target.startswith(("/admin/", "/accounts/logout")) or target.endswith((".js", ".jpg", ".svg"))
            if not skip or target.endswith(".css"):
                queue.append(target)
    return pages


def test_no_page_fetches_anything_from_another_host(site_content, user, client):
    client.force_login(user)
    share = site_content["share"]
    a, b = site_content["run"].candidates.order_by("index")[:2]
    starts = parameterless_routes() + [f"/s/{share}/", "/accounts/login/", f"/compare/?a={a.pk}&b={b.pk}"]
    assert "/api/redoc/" in starts and "/api/docs/" in starts and "/" in starts
    pages = crawl(client, starts)
    print(f"{len(pages)} pages crawled:", *sorted(pages), sep="\n  ")
    anonymous = crawl(Client(), ["/accounts/login/", f"/s/{share}/", "/no/such/page/"])
    pages.update({f"(anonymous) {k}": v for k, v in anonymous.items()})
    # The crawl reached every kind of page: runs, a trace, experiments, skills, the API docs, a share.
    run = site_content["run"]
    for must in (f"/runs/{run.pk}/", "/api/redoc/", "/api/docs/", "/skills/", "/static/css/app.css", "/admin/"):
        assert must in pages, must
    assert any(u.startswith("/episodes/") for u in pages) and any(u.startswith("/compare/") for u in pages)
    assert len(pages) > 25
    found = {url: external_urls(text) for url, text in pages.items() if external_urls(text)}
    assert found == {}
    # Redoc's and Swagger UI's bundles carry URLs of their own (Redoc's footer logo on cdn.redoc.ly): both
    # pages forbid fetching from anywhere but this server.
    for docs in ("/api/redoc/", "/api/docs/"):
        assert "default-src 'self'" in pages[docs] and "img-src 'self' data: blob:" in pages[docs]
    assert '"validatorUrl": null' in pages["/api/docs/"]


@pytest.mark.browser
def test_a_browser_requests_nothing_from_another_host(asgi_live_server, browser, django_user_model):
    """Chromium loads the pages (scripts run, the API docs render) and every request it makes stays on
    this server."""
    from testing.browser import log_in

    django_user_model.objects.create_user("ada", password="a-long-test-password", is_staff=True)
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    for url in ("/", "/runs/new/", "/experiments/new/", "/skills/", "/account/", "/no/such/page/"):
        page.goto(asgi_live_server.url + url)
        page.wait_for_load_state("networkidle")
    page.goto(asgi_live_server.url + "/api/docs/")
    page.wait_for_selector("#swagger-ui .information-container")  # Swagger UI ran and rendered the schema
    page.wait_for_load_state("networkidle")
    page.goto(asgi_live_server.url + "/api/redoc/")
    page.wait_for_selector(".api-content h1")  # Redoc ran and rendered the schema
    page.wait_for_load_state("networkidle")
    host = urlsplit(asgi_live_server.url).netloc
    web = [u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert len(web) > 20 and any("/static/drf_spectacular_sidecar/redoc/" in u for u in web)
    # Not even one the pages' Content-Security-Policy would block: the browser does not try any.
    assert [u for u in web if urlsplit(u).netloc != host] == []


# -- logs: one line for expected conditions -------------------------------------------------------------


def logged(filter_: logging.Filter, record_exc: BaseException, message="broker call failed", n=1) -> list[str]:
    logger = logging.getLogger(f"test.logfilters.{id(filter_)}")
    logger.propagate = False
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(filter_)
    logger.addHandler(handler)
    try:
        for _ in range(n):
            try:
                raise record_exc
            except BaseException:
                logger.exception(message)
    finally:
        logger.removeHandler(handler)
    return lines


def wrapped_broker_error() -> Exception:
    """kombu's OperationalError raised from redis-py's ConnectionError, as Celery sees a dead Redis."""
    import kombu.exceptions

    try:
        try:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        except redis.exceptions.ConnectionError as exc:
            raise kombu.exceptions.OperationalError("Error 111 connecting") from exc
    except kombu.exceptions.OperationalError as exc:
        return exc


def test_expected_outages_are_one_line_and_bugs_keep_their_traceback():
    lines = logged(logfilters.OneLineExpected(), wrapped_broker_error())
    assert lines == ["ERROR broker call failed: OperationalError: Error 111 connecting"]
    locked = logged(logfilters.OneLineExpected(), OperationalError("database is locked"), "query failed")
    assert locked == ["ERROR query failed: OperationalError: database is locked"]
    hung_up = logged(logfilters.OneLineExpected(), BrokenPipeError(32, "Broken pipe"), "send failed")
    assert len(hung_up) == 1 and "Traceback" not in hung_up[0]
    bug = logged(logfilters.OneLineExpected(), KeyError("x"), "bug")
    assert len(bug) == 1 and "Traceback (most recent call last)" in bug[0] and "KeyError" in bug[0]


def test_repeats_are_thinned_to_one_line_per_window(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(logfilters.time, "monotonic", lambda: clock[0])
    f = logfilters.OneLineExpected(window=30)
    outage = redis.exceptions.ConnectionError("Connection refused")
    assert len(logged(f, outage, "live broadcast failed", n=50)) == 1
    clock[0] += 31
    again = logged(f, outage, "live broadcast failed")
    assert again == [
        "ERROR live broadcast failed: ConnectionError: Connection refused (49 more like this in the last 30 s)"
    ]


def test_the_logging_config_and_celerys_handlers_carry_the_filter():
    from celery import signals

    from aspire_web.settings import base

    console = base.LOGGING["handlers"]["console"]
    assert console["filters"] == ["expected_one_line"]
    assert base.LOGGING["filters"]["expected_one_line"]["()"] == "aspire_web.logfilters.OneLineExpected"
    logger = logging.getLogger("test.celery.root")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        for signal in (signals.after_setup_logger, signals.after_setup_task_logger):
            signal.send(sender=None, logger=logger, loglevel=20, logfile=None, format="", colorize=False)
        assert sum(isinstance(f, logfilters.OneLineExpected) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)


def test_the_celery_app_module_wires_the_filter():
    assert "logfilters" in (ROOT / "aspire_web" / "celery.py").read_text()


def test_a_redis_outage_logs_one_warning_line_for_many_live_events(settings, caplog):
    """The live broadcaster pointed at a Redis that is not there: 30 events, one warning, no traceback."""
    from runs import live

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]},
        }
    }
    live._throttle = logfilters.Throttle(live.BROKEN_LOG_WINDOW_S)
    broadcaster = live.Broadcaster()
    with caplog.at_level(logging.WARNING, logger="runs.live"):
        for i in range(30):
            broadcaster.publish("run_1", {"type": "live.run", "run_seq": i})
        assert broadcaster.flush(60)
    records = [r for r in caplog.records if r.name == "runs.live"]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == logging.WARNING and records[0].exc_info is None
    assert "ConnectionError" in records[0].getMessage() and "pages catch up" in records[0].getMessage()
