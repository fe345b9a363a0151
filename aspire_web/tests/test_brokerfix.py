"""aspire_web.brokerfix: the kombu Redis-transport crash a broker outage caused (kombu issue 970),
reproduced on a real Redis along the call path Celery's consumer takes when the broker dies under it."""

import traceback

import pytest
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from aspire_web import brokerfix, localredis


@pytest.fixture
def outage(tmp_path):
    """A consumer as Celery's worker holds one when Redis dies: the task channel with two delivered,
    unacknowledged messages and a BRPOP in flight, plus a fanout (remote-control) channel; then Redis
    is killed and ``collect()`` runs, as ``Consumer.on_connection_error_after_connected`` does."""
    proc, url = localredis.start(tmp_path, persist=False)
    conn = Connection(url)
    try:
        tasks = Queue("tasks", Exchange("tasks", type="direct"), "tasks")
        with conn.Producer() as producer:
            for i in range(2):
                producer.publish({"i": i}, exchange=tasks.exchange, routing_key="tasks", declare=[tasks])
        delivered = []
        consumer = conn.Consumer([tasks], callbacks=[lambda body, message: delivered.append(message)], accept=["json"])
        consumer.qos(prefetch_count=2)
        consumer.consume()
        control = conn.channel()
        pidbox = Queue("ctl", Exchange("ctl", type="fanout"), auto_delete=True)
        conn.Consumer([pidbox], channel=control, callbacks=[lambda b, m: None], accept=["json"], no_ack=True).consume()
        while len(delivered) < 2:
            conn.drain_events(timeout=2)
        channel = conn.default_channel
        channel._brpop_start()  # the event loop always has a BRPOP in flight
        proc.kill()
        proc.wait()
        conn.collect(socket_timeout=0.1)
        yield conn, channel
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_patch_is_installed_with_the_celery_app():
    import aspire_web.celery  # noqa: F401

    assert kombu_redis.Channel._connparams.__wrapped__ is brokerfix.original_connparams()
    assert brokerfix.install() is False  # once


def test_without_the_patch_closing_after_an_outage_raises_the_reported_attribute_error(outage, monkeypatch):
    """The state the outage leaves, and kombu's own failure from it. When this test fails, kombu no longer
    needs the patch: delete aspire_web/brokerfix.py and the kombu pin."""
    conn, channel = outage
    assert channel.connection.client is None  # the transport was detached from its connection
    assert not channel.closed and len(channel.qos._delivered) == 2  # the task channel, still holding them
    monkeypatch.setattr(kombu_redis.Channel, "_connparams", brokerfix.original_connparams())
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'") as raised:
        conn.close()  # Celery: ignore_errors(connection, connection.close), which does not ignore this
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert frames[-8:] == [
        "restore_unacked_once",
        "restore_unacked",
        "__enter__",
        "conn_or_acquire",
        "_create_client",
        "pool",
        "_get_pool",
        "_connparams",
    ]


def test_with_the_patch_the_same_path_is_a_connection_error_that_close_ignores(outage):
    conn, channel = outage
    conn.close()  # no AttributeError: maybe_close_channel ignores the connection error
    assert channel.closed
    with pytest.raises(conn.connection_errors) as raised:
        channel.qos.restore_unacked()  # the exact call that crashed
    assert "connection was closed" in str(raised.value)
    ignore_errors(conn, channel.qos.restore_unacked)  # Celery's wrapper: nothing escapes


def test_a_live_connection_is_untouched(tmp_path):
    proc, url = localredis.start(tmp_path, persist=False)
    try:
        with Connection(url) as conn:
            queue = Queue("q", Exchange("q", type="direct"), "q")
            with conn.Producer() as producer:
                producer.publish({"ok": 1}, exchange=queue.exchange, routing_key="q", declare=[queue])
            with conn.SimpleQueue("q") as simple:
                message = simple.get(timeout=2)
                assert message.payload == {"ok": 1}
                message.ack()
    finally:
        proc.kill()
        proc.wait()
