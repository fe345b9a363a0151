from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/runs/<int:pk>/", consumers.RunConsumer.as_asgi()),
    path("ws/episodes/<int:pk>/", consumers.EpisodeConsumer.as_asgi()),
]
