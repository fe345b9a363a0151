"""The trace page's episode player (templates/runs/_player.html): the recording's URL and index."""

from django import template

from runs.media_views import player_data

register = template.Library()


@register.inclusion_tag("runs/_player.html", takes_context=True)
def episode_player(context, episode):
    """The player section for ``episode`` (nothing when it has no recording); a page served through a
    share link fetches the video through that link."""
    return {"player": player_data(episode, context.get("share_token"))}
