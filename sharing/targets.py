"""What share links can point at, registered by the apps that own those things.

sharing sits below runs and skills: it knows links, tokens and their checks, not runs or skills. Each app
registers its kinds of target (runs: a run and an episode trace; skills: a skill) and any pages a link
opens beyond its target (a shared run's traces and keyframe images) in its AppConfig.ready().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from django.http import HttpRequest, HttpResponse


def _no_run(target) -> None:
    return None


@dataclass(frozen=True)
class ShareTarget:
    """One kind of thing a link can share (a ShareLink.Kind value).

    ``get(id)``: the object, or None when it does not exist; ``readable_by(user, obj)``: whether a
    signed-in user may read, and so share, it; ``render(request, obj, token)``: its read-only page;
    ``run_of(obj)``: the run a link to it belongs to (stored on the link, so the run page lists it and its
    live pages are cut off when it is revoked), None for targets outside runs."""

    kind: str
    get: Callable[[int], Any]
    readable_by: Callable[[Any, Any], bool]
    render: Callable[[HttpRequest, Any, str], HttpResponse]
    run_of: Callable[[Any], Any] = _no_run


@dataclass(frozen=True)
class SharedPage:
    """A page under ``/s/<token>/<route>`` beyond the link's target, e.g. a shared run's trace pages.

    ``view(request, link, token, **route_kwargs)`` answers 404 for whatever the link does not cover;
    ``private``: send the page with the no-index, no-referrer, no-store headers (images keep their own
    caching headers)."""

    route: str  # e.g. "episodes/<int:pk>/"
    name: str  # the URL name in the "sharing" namespace
    view: Callable[..., HttpResponse]
    private: bool = True


_targets: dict[str, ShareTarget] = {}
_pages: list[SharedPage] = []


def register_target(target: ShareTarget) -> None:
    _targets[target.kind] = target


def register_page(page: SharedPage) -> None:
    if page not in _pages:
        _pages.append(page)


def target(kind: str) -> ShareTarget | None:
    return _targets.get(kind)


def pages() -> list[SharedPage]:
    return list(_pages)
