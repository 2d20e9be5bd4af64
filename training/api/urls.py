"""Training API under /api/training/. Each module under training/api/ owns its urlpatterns."""
from training.api import jobs, models, runs
from training.judge import api as judge_api

urlpatterns = [
    *models.urlpatterns,
    *runs.urlpatterns,
    *judge_api.urlpatterns,
    *jobs.urlpatterns,
]
