from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("accounts.urls")),
    path("s/", include("sharing.urls")),
    path("skills/", include("skills.urls")),
    path("api/skills/", include("skills.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/", include("aspire_web.api_urls")),
    path("", include("experiments.urls")),
    path("", include("runs.urls")),
]

# Error answers: JSON under /api/, small pages elsewhere; never a traceback (aspire_web/views.py).
handler400 = "aspire_web.views.bad_request"
handler403 = "aspire_web.views.permission_denied"
handler404 = "aspire_web.views.page_not_found"
handler500 = "aspire_web.views.server_error"
