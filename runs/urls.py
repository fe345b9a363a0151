from django.urls import path

from . import editor_views, media_views, views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("runs/new/", views.run_create, name="create"),
    path("runs/<int:pk>/", views.run_detail, name="detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:pk>/health.json", views.run_health, name="health"),
    path("episodes/<int:pk>/", views.episode_detail, name="episode"),
    path("keyframes/<int:pk>.jpg", views.keyframe_image, name="keyframe"),
    path("episodes/<int:pk>/recording.mp4", media_views.episode_recording, name="recording"),
    path("episodes/<int:pk>/scene3d.json.gz", media_views.episode_scene3d, name="scene3d"),
    path("episodes/<int:pk>/episode.rrd", media_views.episode_scene3d_rrd, name="scene3d-rrd"),
    path("compare/", views.compare, name="compare"),
    path("runs/editor/starter.json", editor_views.starter_program, name="editor-starter"),
    path("runs/editor/api.json", editor_views.api_reference, name="editor-api"),
    path("runs/editor/check.json", editor_views.check_program, name="editor-check"),
]
