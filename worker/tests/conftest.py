"""The engine's tests: plain Python, no Django and no database.

They use the root conftest's engine fixtures (``lift_spec``, ``starter_program``) and nothing of
pytest-django: a test here that asks for the database or a Django fixture is refused before it runs, and
test_no_django checks that nothing here imports Django.
"""

import pytest

#: pytest-django's fixtures that need Django's settings or database (directly or through another fixture).
DJANGO_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "django_db_setup",
        "settings",
        "client",
        "async_client",
        "rf",
        "async_rf",
        "admin_client",
        "admin_user",
        "django_user_model",
        "django_username_field",
        "live_server",
        "mailoutbox",
        "django_capture_on_commit_callbacks",
        "django_assert_num_queries",
        "django_assert_max_num_queries",
    }
)


def pytest_runtest_setup(item):
    """Refuse an engine test that is marked for the database or needs a Django fixture."""
    if item.get_closest_marker("django_db") is not None:
        pytest.fail(f"{item.nodeid}: the engine's tests run without a database (django_db mark)", pytrace=False)
    wanted = sorted(DJANGO_FIXTURES.intersection(item.fixturenames))
    if wanted:
        pytest.fail(
            f"{item.nodeid}: the engine's tests use no Django fixtures, asked for {', '.join(wanted)}", pytrace=False
        )
