"""Keep kombu's Redis transport from killing the Celery worker when the broker goes away.

The crash (kombu 5.7.0 with Celery 5.7.0, the newest releases; seen in 3 of 5 Redis outages)::

    CRITICAL/MainProcess] Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")

Upstream: https://github.com/celery/kombu/issues/970 reports the same failure in the same frames
(``QoS.restore_unacked`` -> ``Channel.conn_or_acquire`` -> ``_create_client`` -> ``pool`` -> ``_get_pool``
-> ``_connparams``: ``conninfo.hostname`` with ``conninfo`` None), reached there from a warm shutdown; the
same ``_connparams`` failure after a connection was closed is https://github.com/celery/kombu/issues/582.
Neither is fixed in the installed release, and there is no later one to pin.

How the worker gets there when Redis dies under it (Celery's
``Consumer.on_connection_error_after_connected``):

1. ``connection.collect()`` closes the channels. The task channel's ``close`` first reads the BRPOP in
   flight, which raises ConnectionError (ignored); another channel's ``close`` (the remote-control
   fanout) raises too, which ends ``Transport.close_connection`` early: the task channel stays open, its
   pool already dropped, its delivered-but-unacknowledged messages (the tasks running, acks_late) held.
   Then ``_do_close_transport`` detaches the transport: ``transport.client = None``.
2. ``ignore_errors(connection, connection.close)`` closes the task channel again; now it gets as far as
   restoring its unacknowledged messages, which needs a new pool, whose parameters come from
   ``transport.client.hostname``: AttributeError, which is not a connection error, so nothing ignores it
   and the consumer, then the worker, dies.

The patch: ``Channel._connparams`` raises redis's ConnectionError ("the broker connection was closed")
when the channel's transport no longer has its connection (or the channel its transport), instead of
dereferencing None. A closed connection is a connection error: kombu's ``maybe_close_channel`` and
Celery's ``ignore_errors`` ignore it, and the consumer reconnects as it does for any outage. The messages
that channel could not restore stay in Redis's unacked index and come back after the visibility
timeout; the reconciler (runs.reconcile) re-sends any work whose message was lost. Installed by
aspire_web/celery.py, so in every process that loads the Celery app; harmless once kombu fixes it.
aspire_web/tests/test_brokerfix.py reproduces the failing call path on a real Redis, and fails the day
kombu no longer needs this (then delete this module).

Also silenced here: Celery's seven-line CPendingDeprecationWarning about
``worker_cancel_long_running_tasks_on_connection_loss``, printed at every broker outage. The project
keeps the setting False on purpose (a Redis blip must not kill the episodes running).
"""

from __future__ import annotations

import warnings

_original = None


def connection_closed_error():
    """The exception ``_connparams`` raises on a closed connection: redis's ConnectionError, one of
    the Redis transport's ``connection_errors``."""
    import redis.exceptions

    return redis.exceptions.ConnectionError(
        "the broker connection was closed (kombu Redis channel used after its connection was released)"
    )


def install() -> bool:
    """Patch ``kombu.transport.redis.Channel._connparams`` (once; True when this call patched) and quiet
    Celery's per-outage deprecation notice."""
    global _original
    _quiet_outage_notice()
    # The worker's logging set-up puts "always" filters for Celery's deprecation warnings in front of
    # ours; put ours back in front once it has (celeryd_after_setup follows it, before the pool forks).
    from celery import signals

    signals.celeryd_after_setup.connect(_quiet_outage_notice, weak=False, dispatch_uid="aspire-brokerfix")
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - kombu is a dependency
        return False
    if _original is not None:
        return False
    original = kombu_redis.Channel._connparams

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or getattr(transport, "client", None) is None:
            raise connection_closed_error()
        return original(self, asynchronous=asynchronous)

    _connparams.__wrapped__ = original
    _connparams.__doc__ = "kombu's, raising a connection error once the connection is gone (aspire_web.brokerfix)."
    kombu_redis.Channel._connparams = _connparams
    _original = original
    return True


def _quiet_outage_notice(*args, **kwargs) -> None:
    warnings.filterwarnings(
        "ignore", message=r"\s*In Celery 5\.1 we introduced an optional breaking change", category=Warning
    )


def original_connparams():
    """kombu's own ``Channel._connparams`` (the tests use it to show the failure the patch prevents)."""
    from kombu.transport import redis as kombu_redis

    return _original or kombu_redis.Channel._connparams
