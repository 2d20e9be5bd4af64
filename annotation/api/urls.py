"""REST API. Each feature module under annotation/api/ owns its urlpatterns."""
from annotation.api import ai_agreement, datasets, items, projects, quality, rater, selection

urlpatterns = [
    *projects.urlpatterns,
    *items.urlpatterns,
    *rater.urlpatterns,
    *datasets.urlpatterns,
    *quality.urlpatterns,
    *selection.urlpatterns,
    *ai_agreement.urlpatterns,
]
