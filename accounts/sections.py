"""Sections that apps above accounts add to the account page (/account/), registered in their
AppConfig.ready() (sharing: the share links you made). accounts itself knows only users and teams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from django.http import HttpRequest


@dataclass(frozen=True)
class AccountSection:
    """``template`` is included in the page with the page's context plus ``section``: the dict that
    ``context(request)`` returns for the signed-in user."""

    template: str
    context: Callable[[HttpRequest], dict]


_sections: list[AccountSection] = []


def register_section(section: AccountSection) -> None:
    if section not in _sections:
        _sections.append(section)


def sections_for(request: HttpRequest) -> list[dict]:
    """``[{"template", "section"}]`` for the account page, in registration order."""
    return [{"template": s.template, "section": s.context(request)} for s in _sections]
