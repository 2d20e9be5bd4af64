from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/token/", obtain_auth_token, name="api-token"),
    path("api/", include("annotation.api.urls")),
    path("api/training/", include("training.api.urls")),
    path("training/", include("training.urls")),
    path("", include("annotation.urls")),
]
