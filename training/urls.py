"""Browser pages of the training app. Each module under training/views/ owns its urlpatterns."""
from training.views import loop, models, runs

app_name = "training"

urlpatterns = [
    *runs.urlpatterns,
    *models.urlpatterns,
    *loop.urlpatterns,
]
