"""Shared fixtures of the REST API tests: an API client signed in with a token, rows to read."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from runs import services

from .factories import UserFactory, call_record, finish_episode, keyframe_file, make_run, start_episode


@pytest.fixture
def tasks(db):
    services.sync_catalog()


@pytest.fixture
def user(db):
    return UserFactory(username="api-user")


@pytest.fixture
def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def traced_run(user, settings):
    """A finished run of ``user``: one episode with two calls, the second failing with a keyframe."""
    services.sync_catalog()
    run = make_run(user, seeds=[101])
    sink, ep = start_episode(run)
    sink.call_recorded(ep, call_record(1))
    sink.call_recorded(ep, call_record(2, primitive="move_to_pose", status="NOT_REACHED", line=3,
                                        keyframes=[keyframe_file(settings.MEDIA_ROOT, "test/after.jpg")]))
    finish_episode(sink, ep, 2, success=False, status="EXCEPTION")
    run.refresh_from_db()
    return run
