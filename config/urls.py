from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import health
from config.views import ObtainAuthToken

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/token/", ObtainAuthToken.as_view(), name="api-token"),
    path("api/", include("annotation.api.urls")),
    path("api/training/", include("training.api.urls")),
    path("training/", include("training.urls")),
    path("", include("annotation.urls")),
]

handler500 = "config.views.server_error"
