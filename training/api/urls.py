"""Training API under /api/training/. Each module under training/api/ owns its urlpatterns."""
from training.api import jobs, models, runs

urlpatterns = [
    *models.urlpatterns,
    *runs.urlpatterns,
    *jobs.urlpatterns,
]
