"""The trace page's episode player (templates/runs/_player.html: the recording's URL and index) and 3D view
(templates/runs/_scene3d.html)."""

from django import template

from runs.media_views import player_data, scene3d_rrd_url, scene3d_url
from worker.robot.rrd import RERUN_VERSION

register = template.Library()


@register.inclusion_tag("runs/_player.html", takes_context=True)
def episode_player(context, episode):
    """The player section for ``episode`` (nothing when it has no recording); a page served through a
    share link fetches the video through that link."""
    return {"player": player_data(episode, context.get("share_token"))}


@register.inclusion_tag("runs/_scene3d.html", takes_context=True)
def episode_scene3d(context, episode):
    """The 3D view section for ``episode`` (nothing when it has none): its data's URL; three.js and the
    data load only when the section is opened (static/js/scene3d.js)."""
    token = context.get("share_token")
    return {
        "scene3d_url": scene3d_url(episode, token),
        "rrd_url": scene3d_rrd_url(episode, token),
        "rerun_version": RERUN_VERSION,
        "episode": episode,
    }
