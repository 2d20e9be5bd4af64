"""Browser pages. Each feature module under annotation/views/ owns its urlpatterns."""
from annotation.views import datasets, imports, projects, quality, rater, selection

app_name = "annotation"

urlpatterns = [
    *projects.urlpatterns,
    *imports.urlpatterns,
    *rater.urlpatterns,
    *datasets.urlpatterns,
    *quality.urlpatterns,
    *selection.urlpatterns,
]
