"""Share links on skills: the kind skills registers with sharing (SkillsConfig.ready()). A shared skill is
a minimal read-only page: name, kind, description, code sketch and imported guidance (sanitised)."""

from __future__ import annotations

from django.shortcuts import render

from sharing.models import ShareLink
from sharing.targets import ShareTarget, register_target

from .models import Skill
from .rendering import markdown_html


def register_share_kind() -> None:
    """Skills are the lab's shared library: every signed-in user may read, and so share, any of them."""
    register_target(
        ShareTarget(
            kind=ShareLink.Kind.SKILL,
            get=lambda pk: Skill.objects.filter(pk=pk).first(),
            readable_by=lambda user, skill: True,
            render=lambda request, skill, token: render(
                request,
                "skills/shared.html",
                {
                    "skill": skill,
                    "share_token": token,
                    "guidance_html": markdown_html(skill.guidance) if skill.guidance else "",
                },
            ),
        )
    )
