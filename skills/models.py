"""The skill library (DESIGN section 5). Minimal until the skill-library issue grows it."""

from django.db import models


class Skill(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed"
        VALIDATED = "validated"
        APPROVED = "approved"
        REJECTED = "rejected"
        RETIRED = "retired"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=50, blank=True)
    code_sketch = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
