"""Share links: a signed, unguessable, revocable, read-only URL for one run, episode trace or skill."""

from django.conf import settings
from django.db import models


class ShareLink(models.Model):
    """A grant to read one target without logging in.

    Only a SHA-256 of the random token is stored, so the database alone cannot be turned into working
    links; the full URL is shown once, when the link is made. ``target_id`` is generic (kind + id) so new
    kinds need no schema change; ``run`` is denormalised for the run and episode kinds so a run page can
    list its links and live connections can be cut off when one is revoked.
    """

    class Kind(models.TextChoices):
        RUN = "run"
        EPISODE = "episode", "Episode trace"
        SKILL = "skill"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    target_id = models.PositiveBigIntegerField()
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="share_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "target_id"])]

    def __str__(self):
        return f"share of {self.kind} {self.target_id}"

    @property
    def active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
