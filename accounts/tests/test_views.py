"""The account page through Django's test client."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_account_page_makes_an_api_token_once(user, owner_client):
    c = owner_client
    assert "Make a token" in c.get("/account/").content.decode()
    page = c.post("/account/token/", follow=True).content.decode()
    from rest_framework.authtoken.models import Token

    assert Token.objects.get(user=user).key in page
    assert Token.objects.get(user=user).key not in c.get("/account/").content.decode()
