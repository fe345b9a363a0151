"""ASGI entry point: HTTP through Django, websockets through Channels (see runs/routing.py), and the MCP
endpoint of mcp actors (/mcp/actors/<id>/, streamable HTTP; experiments/mcp_server.py) in front of Django.

Websockets pass the same gates as pages: the Origin must be one of ALLOWED_HOSTS (no cross-site
socket can ride a user's session cookie), and the session user reaches the consumers, which check
access per run or share link.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_web.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from experiments.mcp_server import mount  # noqa: E402
from runs.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": mount(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
