"""Browser pages. Each feature module under annotation/views/ owns its urlpatterns."""
from annotation.views import adjudication, datasets, demonstrations, imports, my_work, projects, quality, rater, selection

app_name = "annotation"

urlpatterns = [
    *projects.urlpatterns,
    *imports.urlpatterns,
    *rater.urlpatterns,
    *datasets.urlpatterns,
    *quality.urlpatterns,
    *selection.urlpatterns,
    *my_work.urlpatterns,
    *adjudication.urlpatterns,
    *demonstrations.urlpatterns,
]
