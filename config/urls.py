from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from config.parsers import SafeJSONParser

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # DRF's token view names its own parsers; give it the bounded JSON parser like every other view.
    path("api/token/", ObtainAuthToken.as_view(parser_classes=[FormParser, MultiPartParser, SafeJSONParser]), name="api-token"),
    path("api/", include("annotation.api.urls")),
    path("api/training/", include("training.api.urls")),
    path("training/", include("training.urls")),
    path("", include("annotation.urls")),
]
