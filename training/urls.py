"""Browser pages of the training app. Each module under training/views/ owns its urlpatterns."""
from training.judge import views as judge_views
from training.views import checkpoints, loop, models, runs

app_name = "training"

urlpatterns = [
    *runs.urlpatterns,
    *models.urlpatterns,
    *judge_views.urlpatterns,
    *loop.urlpatterns,
    *checkpoints.urlpatterns,
]
