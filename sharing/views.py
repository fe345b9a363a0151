"""Share links: make and revoke them (signed-in), and serve their targets read-only (no login).

A shared page is the ordinary template rendered with ``share_token`` set: base.html then shows no
navigation, no launch, no admin, and every link and image goes through the same token, which grants
nothing beyond its target (a run share covers the run's episodes and keyframes; an episode share only
that trace). The pages themselves come from the apps that own the targets (sharing.targets).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import services, targets
from .models import ShareLink


def _back(request, fallback="/"):
    nxt = request.POST.get("next", "")
    return (
        nxt
        if url_has_allowed_host_and_scheme(nxt, {request.get_host()}, require_https=request.is_secure())
        else fallback
    )


@login_required
@require_POST
def create(request):
    try:
        target_id = int(request.POST.get("target", ""))
        days = int(request.POST["expires_in_days"]) if request.POST.get("expires_in_days") else None
        link, token = services.create_link(
            request.user,
            request.POST.get("kind", ""),
            target_id,
            label=request.POST.get("label", ""),
            expires_in_days=days,
        )
    except ValueError:
        messages.error(request, "A share link needs a numeric target id and expiry.")
    except services.ShareError as exc:
        messages.error(request, str(exc))
    else:
        url = request.build_absolute_uri(reverse("sharing:view", args=[token]))
        # The token is not stored: this message is the only place the full link is ever shown.
        messages.success(request, url, extra_tags="share-url")
    return redirect(_back(request))


@login_required
@require_POST
def revoke(request, pk):
    link = get_object_or_404(ShareLink, pk=pk)
    try:
        if services.revoke(link, request.user):
            messages.success(request, "Share link revoked; it no longer opens anything.")
    except services.ShareError:
        raise Http404("no such share link") from None
    return redirect(_back(request, reverse("accounts:home")))


def _resolve(request, token):
    """(link, None) for a usable token, else (None, the refusal page)."""
    try:
        link = services.resolve(token)
    except services.ShareError as exc:
        response = render(request, "sharing/refused.html", {"reason": str(exc)}, status=exc.status)
        return None, response
    services.touch(link)
    return link, None


def _private(response):
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token must not travel in Referer headers
    response["Cache-Control"] = "private, no-store"
    return response


def view(request, token):
    """The link's target, rendered read-only by the app that owns it."""
    link, refused = _resolve(request, token)
    if refused:
        return refused
    try:
        target = services.get_target(link.kind, link.target_id)
    except services.ShareError:
        raise Http404("the shared item no longer exists") from None
    return _private(targets.target(link.kind).render(request, target, token))


def page(request, token, shared_page: targets.SharedPage, **kwargs):
    """A page under the link beyond its target (see targets.SharedPage); 404 for what it does not cover."""
    link, refused = _resolve(request, token)
    if refused:
        return refused
    response = shared_page.view(request, link, token, **kwargs)
    return _private(response) if shared_page.private else response
