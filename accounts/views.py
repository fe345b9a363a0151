"""The signed-in user's page: teams, API token, and what other apps add (accounts.sections)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from . import services
from .sections import sections_for


@login_required
def home(request):
    return render(
        request,
        "accounts/home.html",
        {
            "teams": services.teams_of(request.user).prefetch_related("memberships__user"),
            "has_token": Token.objects.filter(user=request.user).exists(),
            "sections": sections_for(request),
        },
    )


@login_required
@require_POST
def new_token(request):
    """Replace the user's API token; the key is shown once, on the next page."""
    Token.objects.filter(user=request.user).delete()
    token = Token.objects.create(user=request.user)
    messages.success(request, token.key, extra_tags="api-token")
    return redirect("accounts:home")
