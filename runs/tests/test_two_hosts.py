"""The deployment of README "Deploy on several machines", run on one machine: one PostgreSQL database (a
fresh one), one Redis (a private one), one S3-compatible store (moto's standalone server, a real HTTP
process), one web process (Daphne) and two Celery workers, each started in a directory of its own with its
own ``ASPIRE_MEDIA_ROOT`` (no local path is shared: keyframes reach the web process only through the
bucket). A program run and a search spread over both workers and finish with exactly their episodes;
every keyframe is served by the web process; a worker killed with SIGKILL mid-run leaves the other to
finish (the reconciler every worker runs retakes the dead owner's episode).

Needs PostgreSQL at 127.0.0.1:5432 (``ASPIRE_TEST_POSTGRES_URL``) and moto's server; skipped with the
reason when either is missing (outside CI).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from testing import hosts
from testing.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

LIFT = "robosuite:Lift"
_TOKEN = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user, _ = get_user_model().objects.get_or_create(username="two-hosts")
print("TOKEN", Token.objects.get_or_create(user=user)[0].key)
"""


class Site:
    """The web process as a client sees it: JSON requests with a token, raw GETs for images."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def request(self, method: str, path: str, body=None, timeout: float = 30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read()

    def json(self, method: str, path: str, body=None, expect: int = 200):
        status, _, raw = self.request(method, path, body)
        assert status == expect, (method, path, status, raw[:2000])
        return json.loads(raw)

    def run(self, run_id: int) -> dict:
        return self.json("GET", f"/api/runs/{run_id}/")

    def wait_final(self, run_id: int, timeout: float, deployment) -> dict:
        def final():
            run = self.run(run_id)
            return run if run["status"] in ("FINISHED", "FAILED", "CANCELLED") else None

        try:
            return wait_for(final, timeout=timeout, interval=2.0)
        except Exception as exc:
            raise AssertionError(f"run {run_id} did not end: {self.run(run_id)}\n{logs(deployment)}") from exc


def logs(deployment) -> str:
    return "\n".join(f"--- {h.name}\n{hosts.tail(h.log, 4000)}" for h in deployment.hosts)


def query(db_url: str, sql: str, *args):
    import psycopg

    with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def deployment(tmp_path):
    why = hosts.postgres_reachable()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    pytest.importorskip("moto.server", reason="moto's server is not installed (requirements.txt)")
    boto3 = pytest.importorskip("boto3")
    with (
        hosts.fresh_postgres_database() as db_url,
        hosts.private_redis(tmp_path / "redis") as redis_url,
        hosts.moto_s3_server(tmp_path) as s3_url,
    ):
        credentials = {"AWS_ACCESS_KEY_ID": "two-hosts", "AWS_SECRET_ACCESS_KEY": "two-hosts-secret"}
        boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="aspire-media")
        env = {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "ASPIRE_STORAGE": "s3",
            "ASPIRE_S3_BUCKET": "aspire-media",
            "ASPIRE_S3_ENDPOINT_URL": s3_url,
            "ASPIRE_S3_REGION": "us-east-1",
            "ASPIRE_MEDIA_SERVE": "stream",  # the web process reads each keyframe from the bucket
            **credentials,
            # A killed worker is dead after 10 s of silence; every worker reconciles every 5 s.
            "ASPIRE_OWNER_TIMEOUT_SECONDS": "10",
            "ASPIRE_RECONCILE_SECONDS": "5",
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa"),
            "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM", "osmesa"),
            "PYTHONUNBUFFERED": "1",
        }
        d = hosts.Deployment(tmp_path / "hosts", env)
        d.db_url = db_url
        try:
            d.manage("migrate", "--noinput")
            d.manage("load_tasks")
            token = [x for x in d.manage("shell", "-c", _TOKEN).splitlines() if x.startswith("TOKEN ")][-1].split()[1]
            port = hosts.free_port()
            d.web(port)
            d.site = Site(f"http://127.0.0.1:{port}", token)
            d.workers = [d.worker("host-a"), d.worker("host-b")]
            yield d
        finally:
            d.close()


def episodes_of(db_url: str, run_id: int):
    """(candidate, split, seed, status, worker, attempt) of the run's episodes."""
    return query(
        db_url,
        "SELECT candidate_id, split, seed, status, worker, attempt FROM runs_episode WHERE run_id = %s",
        run_id,
    )


def assert_every_keyframe_is_served(d, run_id: int) -> int:
    ids = [
        row[0]
        for row in query(
            d.db_url,
            "SELECT k.id FROM runs_keyframe k JOIN runs_episode e ON e.id = k.episode_id WHERE e.run_id = %s",
            run_id,
        )
    ]
    for pk in ids:
        status, content_type, raw = d.site.request("GET", f"/api/keyframes/{pk}/image/")
        assert status == 200, (pk, status, raw[:300])
        assert content_type.startswith("image/") and raw[:3] == b"\xff\xd8\xff", (pk, content_type, raw[:20])
    # Nothing was written to a host's own media directory: the bucket is the only place.
    for host in d.hosts:
        media = host.directory / "media"
        assert not media.exists() or not any(p.is_file() for p in media.rglob("*")), f"{host.name} wrote {media}"
    return len(ids)


def test_a_run_and_a_search_spread_over_two_worker_hosts_and_one_survives_the_other(deployment):
    d = deployment
    site = d.site

    # A program run and a search at once, over both workers.
    run = site.json("POST", "/api/runs/", {"task": LIFT, "seeds": [1, 2, 3, 4]}, expect=201)
    search = site.json(
        "POST",
        "/api/experiments/",
        {
            "kind": "search",
            "tasks": [LIFT],
            "agent": "offline",
            "candidates_per_round": 2,
            "max_rounds": 1,
            "debug_seeds": [11, 12],
            "heldout_seeds": [21, 22],
        },
        expect=201,
    )
    done = site.wait_final(run["id"], 900, d)
    assert done["status"] == "FINISHED", (done, logs(d))
    episodes = episodes_of(d.db_url, run["id"])
    assert sorted(e[2] for e in episodes) == [1, 2, 3, 4]
    assert all(e[3] not in ("RUNNING", "CANCELLED") for e in episodes), episodes
    finished = site.wait_final(search["id"], 900, d)
    assert finished["status"] == "FINISHED", (finished, logs(d))
    searched = episodes_of(d.db_url, search["id"])
    debug = [e for e in searched if e[1] == "debug"]
    heldout = [e for e in searched if e[1] == "heldout"]
    assert len(debug) == 2 * 2 and sorted(e[2] for e in heldout) == [21, 22], searched
    assert len({(e[0], e[1], e[2]) for e in searched}) == len(searched)
    # Both hosts did episodes (a worker's name is aspire@<host>:<pid of its pool process>).
    by = {e[4] for e in episodes + searched}
    assert len(by) >= 2, f"all episodes were run by {by}"
    assert assert_every_keyframe_is_served(d, run["id"]) > 0
    assert_every_keyframe_is_served(d, search["id"])

    # One host dies mid-run: the other finishes the run, the dead one's episode retaken.
    seeds = list(range(31, 39))
    run = site.json("POST", "/api/runs/", {"task": LIFT, "seeds": seeds}, expect=201)
    victim, survivor = d.workers
    pool = {}

    def running_on_victim():
        for e in episodes_of(d.db_url, run["id"]):
            if e[3] == "RUNNING" and e[4]:
                pid = int(e[4].rsplit(":", 1)[1])
                pool[pid] = e
                if _child_of(pid, victim.process.pid):
                    return e
        return None

    wait_for(running_on_victim, timeout=600, interval=0.2)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=30)
    killed_at = time.monotonic()
    done = site.wait_final(run["id"], 900, d)
    assert done["status"] == "FINISHED", (done, logs(d))
    episodes = episodes_of(d.db_url, run["id"])
    assert sorted(e[2] for e in episodes) == seeds, episodes
    assert all(e[3] not in ("RUNNING", "CANCELLED") for e in episodes), episodes
    assert any(e[5] >= 2 for e in episodes), f"no episode was retaken: {episodes}"
    assert survivor.alive()
    assert time.monotonic() - killed_at < 900
    assert_every_keyframe_is_served(d, run["id"])


def _child_of(pid: int, parent: int) -> bool:
    """True when ``pid`` is ``parent`` or one of its children (a Celery pool process)."""
    if pid == parent:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False
