from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.parsers import FormParser, MultiPartParser

from config.health import health
from config.parsers import SafeJSONParser
from config.views import ObtainAuthToken

urlpatterns = [
    # Browsers that ignore base.html's <link rel="icon"> ask for /favicon.ico: no 404 for them either.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True), name="favicon"),
    path("health/", health, name="health"),
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

# Error pages inside the layout, with the reason and a way back (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.views.server_error"
