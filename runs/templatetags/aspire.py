"""URLs that follow the page's mode: a page served through a share link links only through that link."""

from django import template
from django.urls import reverse

register = template.Library()
_PLACEHOLDER = 987654321


@register.simple_tag(takes_context=True)
def episode_url(context, episode):
    token = context.get("share_token")
    return reverse("sharing:episode", args=[token, episode.pk]) if token else episode.get_absolute_url()


@register.simple_tag(takes_context=True)
def keyframe_url(context, keyframe):
    token = context.get("share_token")
    return reverse("sharing:keyframe", args=[token, keyframe.pk]) if token else keyframe.get_absolute_url()


@register.simple_tag(takes_context=True)
def run_url(context, run):
    token = context.get("share_token")
    return reverse("sharing:view", args=[token]) if token else run.get_absolute_url()


@register.simple_tag(takes_context=True)
def url_template(context, kind):
    """A URL with "{id}" where the object id goes, for page scripts: kind is episode | keyframe."""
    token = context.get("share_token")
    names = {"episode": ("runs:episode", "sharing:episode"), "keyframe": ("runs:keyframe", "sharing:keyframe")}[kind]
    url = reverse(names[1], args=[token, _PLACEHOLDER]) if token else reverse(names[0], args=[_PLACEHOLDER])
    return url.replace(str(_PLACEHOLDER), "{id}")


@register.filter
def pct(value):
    """0.667 -> "67%"; None or anything not a number -> "–"."""
    return f"{value * 100:.0f}%" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


@register.simple_tag
def status_vocabulary():
    """The status values the page scripts compare against, as a JSON script element (id status-vocabulary):
    {"call": {...CallStatus}, "episode": {...EpisodeStatus}, "run_terminal": [...]}."""
    from django.utils.html import json_script

    from runs.models import Run
    from worker.robot.status import CallStatus, EpisodeStatus

    vocabulary = {
        "call": {s.name: s.value for s in CallStatus},
        "episode": {s.name: s.value for s in EpisodeStatus},
        "run_terminal": [Run.Status.FINISHED, Run.Status.FAILED, Run.Status.CANCELLED],
    }
    return json_script(vocabulary, "status-vocabulary")


@register.filter
def split_groups(episodes):
    """A candidate's episodes grouped per split (runs.presenters.episode_groups), debug before held-out."""
    from runs.presenters import episode_groups

    return episode_groups(episodes.all() if hasattr(episodes, "all") else episodes)


@register.inclusion_tag("runs/_run_badge.html")
def run_badge(run, badge_id=""):
    """The run's status badge. A run that finished with no success at all is not shown as a green
    FINISHED: it reads "finished · 0%" in red (``status-FINISHED-ZERO``)."""
    zero = run.status == "FINISHED" and run.n_episodes > 0 and not run.n_success
    return {"run": run, "zero": zero, "badge_id": badge_id}


@register.filter
def pretty_json(value):
    """A recorded value as indented JSON (the compare page's arguments and results)."""
    import json

    return json.dumps(value, indent=1, sort_keys=True, default=str)
