from django.urls import path

from . import views

app_name = "skills_api"
urlpatterns = [
    path("", views.SkillListView.as_view(), name="list"),
    path("<int:pk>/", views.SkillDetailView.as_view(), name="detail"),
    path("<int:pk>/approve/", views.SkillApproveView.as_view(), name="approve"),
    path("<int:pk>/reject/", views.SkillRejectView.as_view(), name="reject"),
]
