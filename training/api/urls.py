"""Training API under /api/training/. Each module under training/api/ owns its urlpatterns."""
from training.api import models, runs

urlpatterns = [
    *models.urlpatterns,
    *runs.urlpatterns,
]
