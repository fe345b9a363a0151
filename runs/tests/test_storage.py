"""Media through Django's storage API (runs.storage): a real episode's keyframes land in the configured
storage (the local filesystem, or an S3 bucket of a real moto server process), the pages, the REST API and
share links hand them to whoever may see them and to nobody else, and a retaken episode's dead attempt
loses its files in the storage too."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from aspire_web.localredis import free_port
from runs import heartbeat, storage, work
from runs.models import Episode, Keyframe, Run
from testing.sharing import make_link

from .factories import RunFactory

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "aspire-media"
PREFIX = "aspire-test"
#: Fails on purpose after a perception call: keyframes of get_observation, of the failed move and the
#: scene the failed episode left ("final").
PROGRAM = 'obs = get_observation(["agentview"])\nmove_to_pose([5.0, 5.0, 5.0])\n'
JPEG = b"\xff\xd8\xff"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "aspire-test", "AWS_SECRET_ACCESS_KEY": "aspire-test-secret"}


def settings_from_environment(**env) -> dict:
    """aspire_web/settings/base.py's media settings as a fresh process computes them from ``env``:
    ``{"default": STORAGES["default"], "serve": ASPIRE_MEDIA_SERVE}``; RuntimeError with its stderr
    when the settings refuse the environment."""
    script = (
        "import json; from aspire_web.settings import base; "
        "print(json.dumps({'default': base.STORAGES['default'], 'serve': base.ASPIRE_MEDIA_SERVE}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ASPIRE_S3_", "ASPIRE_STORAGE", "ASPIRE_MEDIA"))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


class MotoServer:
    """moto's S3-compatible server as a process of its own on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not start on port {self.port}") from None
                time.sleep(0.2)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, prefix=""):
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        server.stop()


class Backend:
    """The media storage a test runs against, and where its files can be seen from outside Django."""

    def __init__(self, kind, media_root: Path, moto=None):
        self.kind, self.media_root, self.moto = kind, media_root, moto

    def stored_names(self, prefix="runs/") -> list[str]:
        """Names of the files the storage holds under ``prefix``, seen directly (disk or bucket)."""
        if self.kind == "s3":
            return [k[len(PREFIX) + 1 :] for k in self.moto.keys(f"{PREFIX}/{prefix}")]
        base = self.media_root / prefix
        return sorted(str(p.relative_to(self.media_root)) for p in base.rglob("*") if p.is_file())

    def stored_bytes(self, name) -> bytes:
        if self.kind == "s3":
            return self.moto.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}")["Body"].read()
        return (self.media_root / name).read_bytes()


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path, monkeypatch):
    """The default storage for this test: the local filesystem under a fresh MEDIA_ROOT, or S3 (moto)
    configured the way an operator does it, through ASPIRE_STORAGE=s3 and the ASPIRE_S3_* variables."""
    settings.MEDIA_ROOT = tmp_path / "media"
    if request.param == "local":
        conf = settings_from_environment(ASPIRE_STORAGE="local")
        assert conf == {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}, "serve": "stream"}
        yield Backend("local", settings.MEDIA_ROOT)
        return
    server = request.getfixturevalue("moto")
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)  # boto3's credential chain, as on a deployed host
    conf = settings_from_environment(
        ASPIRE_STORAGE="s3",
        ASPIRE_S3_BUCKET=BUCKET,
        ASPIRE_S3_ENDPOINT_URL=server.endpoint,
        ASPIRE_S3_REGION="us-east-1",
        ASPIRE_S3_PREFIX=PREFIX,
    )
    assert conf["default"]["BACKEND"] == "storages.backends.s3.S3Storage" and conf["serve"] == "redirect"
    settings.STORAGES = {**django_settings.STORAGES, "default": conf["default"]}
    settings.ASPIRE_MEDIA_SERVE = conf["serve"]
    yield Backend("s3", settings.MEDIA_ROOT, server)


@pytest.fixture(autouse=True)
def no_holds_left():
    yield
    heartbeat.drop_all()


def fetch(client, path) -> tuple[int, bytes, str]:
    """``(status, body, content type)`` of ``path`` as ``client`` gets it, following a redirect to a
    signed storage URL over real HTTP (as a browser does)."""
    response = client.get(path)
    if response.status_code == 302 and response["Location"].startswith("http"):
        assert "max-age=" in response["Cache-Control"] and response["Cache-Control"].startswith("private")
        with urllib.request.urlopen(response["Location"], timeout=30) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body, response.get("Content-Type", "")


@pytest.mark.django_db
def test_a_real_episode_keeps_its_keyframes_in_the_storage_and_serves_them_to_its_viewers_only(
    backend, settings, user, owner_client, api, tasks
):
    run = RunFactory(owner=user, seeds=[11], program=PROGRAM)
    candidate = run.candidates.get()
    status = work.run_episode(candidate.pk, Episode.Split.DEBUG, 11)
    assert status is not None and status != "OK"
    episode = Episode.objects.get()
    keyframes = list(episode.keyframes.order_by("id"))
    assert len(keyframes) >= 3 and "final" in [k.label for k in keyframes]

    # Every keyframe is a JPEG in the storage under the episode's folder, and only there.
    names = [k.image.name for k in keyframes]
    assert all(n.startswith(f"runs/{run.pk}/episodes/{episode.pk}/") for n in names)
    # ... beside the episode's 3D view (worker.robot.scene3d), in the same folder.
    assert episode.scene3d.name.startswith(f"runs/{run.pk}/episodes/{episode.pk}/")
    assert backend.stored_names(f"runs/{run.pk}/") == sorted(names + [episode.scene3d.name])
    assert all(backend.stored_bytes(n)[:3] == JPEG for n in names)
    if backend.kind == "s3":
        assert not backend.media_root.exists() or not any(backend.media_root.rglob("*.jpg"))

    # The trace page and the API point at the image; its owner gets the stored bytes through either.
    kf = keyframes[0]
    expected = backend.stored_bytes(kf.image.name)
    html = owner_client.get(f"/episodes/{episode.pk}/").content.decode()
    assert f"/keyframes/{kf.pk}.jpg" in html
    answer = owner_client.get(f"/keyframes/{kf.pk}.jpg")
    if backend.kind == "s3":  # a short-lived signed URL of the object, straight from the store
        location = answer["Location"]
        assert answer.status_code == 302 and location.startswith(f"{backend.moto.endpoint}/{BUCKET}/{PREFIX}/")
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    else:
        assert answer.status_code == 200 and answer.streaming
    assert fetch(owner_client, f"/keyframes/{kf.pk}.jpg") == (200, expected, "image/jpeg")
    image_url = api.get("/api/keyframes/", {"episode": episode.pk}).json()["results"][0]["image_url"]
    assert image_url.endswith(f"/api/keyframes/{kf.pk}/image/")
    assert fetch(api, f"/api/keyframes/{kf.pk}/image/") == (200, expected, "image/jpeg")
    assert storage.media_storage().read(kf.image.name) == expected  # what the agents' workbench reads
    # The 3D view comes from the storage through the web process, never by redirect (the page fetch()es it).
    scene3d = owner_client.get(f"/episodes/{episode.pk}/scene3d.json.gz")
    assert scene3d.status_code == 200 and scene3d.content == backend.stored_bytes(episode.scene3d.name)

    # A share link of the run hands it out without a login; one of another run does not.
    token = make_link(owner_client, "run", run.pk).split("/")[2]
    assert fetch(Client(), f"/s/{token}/keyframes/{kf.pk}.jpg") == (200, expected, "image/jpeg")
    other = RunFactory(owner=user, seeds=[12])
    other_token = make_link(owner_client, "run", other.pk).split("/")[2]
    assert Client().get(f"/s/{other_token}/keyframes/{kf.pk}.jpg").status_code == 404

    # Nobody else gets it: not another user, not an anonymous client, by page or API.
    stranger = UserFactory(username="stranger")
    stranger_client = Client()
    stranger_client.force_login(stranger)
    assert stranger_client.get(f"/keyframes/{kf.pk}.jpg").status_code == 404
    anonymous = Client().get(f"/keyframes/{kf.pk}.jpg")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login")
    stranger_api = APIClient()
    stranger_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=stranger).key}")
    assert stranger_api.get(f"/api/keyframes/{kf.pk}/image/").status_code == 404
    assert APIClient().get(f"/api/keyframes/{kf.pk}/image/").status_code in (401, 403)

    if backend.kind == "s3":
        # Where browsers cannot reach the store, the web process streams the object itself.
        settings.ASPIRE_MEDIA_SERVE = "stream"
        response = owner_client.get(f"/keyframes/{kf.pk}.jpg")
        assert response.status_code == 200 and b"".join(response.streaming_content) == expected

    # A keyframe whose file is gone is a 404, not an error.
    Keyframe.objects.filter(pk=keyframes[1].pk).update(image="runs/0/episodes/0/gone.jpg")
    settings.ASPIRE_MEDIA_SERVE = "stream"
    assert owner_client.get(f"/keyframes/{keyframes[1].pk}.jpg").status_code == 404


@pytest.mark.django_db
def test_a_retaken_episode_loses_the_dead_attempts_files_in_the_storage(backend, user, tasks):
    run = RunFactory(owner=user, seeds=[13], program=PROGRAM)
    candidate = run.candidates.get()
    work.run_episode(candidate.pk, Episode.Split.DEBUG, 13)
    episode = Episode.objects.get()
    first = sorted([k.image.name for k in episode.keyframes.all()] + [episode.scene3d.name])
    assert first and backend.stored_names(f"runs/{run.pk}/") == first
    # The worker died in the middle of it (as far as the database can tell): the episode is RUNNING,
    # owned by a process whose heartbeat is long stale, and its run is still running.
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, finished_at=None)
    stale = timezone.now() - timedelta(seconds=heartbeat.owner_timeout() * 2)
    Episode.objects.filter(pk=episode.pk).update(
        status=Episode.RUNNING, worker="aspire@gone:1", heartbeat_at=stale, finished_at=None
    )
    # Another delivery retakes it: attempt 2's keyframes replace attempt 1's, in the storage too.
    work.run_episode(candidate.pk, Episode.Split.DEBUG, 13)
    episode.refresh_from_db()
    assert episode.attempt == 2 and episode.status != Episode.RUNNING
    second = sorted([k.image.name for k in episode.keyframes.all()] + [episode.scene3d.name])
    assert second and all(n.startswith(f"runs/{run.pk}/episodes/{episode.pk}/attempt-2/") for n in second)
    assert backend.stored_names(f"runs/{run.pk}/") == second


def test_the_settings_refuse_an_incomplete_storage_configuration():
    with pytest.raises(RuntimeError, match="ASPIRE_S3_BUCKET"):
        settings_from_environment(ASPIRE_STORAGE="s3")
    with pytest.raises(RuntimeError, match="use local or s3"):
        settings_from_environment(ASPIRE_STORAGE="ftp")
    with pytest.raises(RuntimeError, match="use redirect or stream"):
        settings_from_environment(ASPIRE_MEDIA_SERVE="both")
    conf = settings_from_environment(
        ASPIRE_STORAGE="s3", ASPIRE_S3_BUCKET="b", ASPIRE_S3_URL_EXPIRE="120", ASPIRE_MEDIA_SERVE="stream"
    )
    options = conf["default"]["OPTIONS"]
    assert options["bucket_name"] == "b" and options["querystring_expire"] == 120 and conf["serve"] == "stream"
    assert options["endpoint_url"] is None and options["addressing_style"] is None  # AWS itself
    assert "access_key" not in options and "secret_key" not in options  # credentials stay in the environment
