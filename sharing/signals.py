"""Signals of share links, for the apps above sharing to act on."""

from django.dispatch import Signal

#: Sent (sender=ShareLink, link=<the ShareLink>) after the transaction that revoked a link commits.
link_revoked = Signal()
