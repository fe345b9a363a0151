"""An ASGI live server (Daphne in a forked process) for tests that need websockets.

pytest-django's ``live_server`` speaks WSGI only. This forks Daphne after the test database exists, so
the child shares the SQLite file, media root and Redis of the test process; the fork happens inside a
``transactional_db`` test, so the child inherits unblocked database access.
"""

from contextlib import contextmanager


def _application():
    from channels.routing import get_default_application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(get_default_application())


class AsgiServer:
    def __init__(self, process):
        self.process = process
        self.url = f"http://localhost:{process.port.value}"
        self.ws_url = f"ws://localhost:{process.port.value}"


@contextmanager
def serve_asgi():
    """Daphne serving the project's ASGI application (static files included) until the block ends."""
    from daphne.testing import DaphneProcess
    from django.db import connections

    # A forked child must not inherit an open SQLite connection (Django keeps it in a context-local the
    # child's server threads would reuse, reading the parent's snapshot); close ours, it reopens on use.
    connections.close_all()
    process = DaphneProcess("localhost", _application)
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        caught = process.errors.get(False)[1] if not process.errors.empty() else "no error caught"
        raise RuntimeError("Daphne did not start: " + caught)
    try:
        yield AsgiServer(process)
    finally:
        process.terminate()
        process.join(10)
