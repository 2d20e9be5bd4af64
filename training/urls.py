"""Browser pages of the training app."""
app_name = "training"
urlpatterns = []
