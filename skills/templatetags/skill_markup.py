"""``{{ text|markdown }}``: a skill's text fields as sanitised HTML (skills.rendering.markdown_html), the
same renderer as imported guidance, so **bold**, lists and `code` read as such and raw HTML never runs."""

from django import template

from skills.rendering import markdown_html

register = template.Library()


@register.filter
def markdown(text):
    return markdown_html(str(text or ""))
