from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # annotation/ never imports training/: it asks annotation.hooks, which training fills here.
        from annotation import hooks
        from training.recipes import catalog
        from training.selection.services import RewardModelUncertainty

        hooks.format_readers = catalog.readers_by_format
        hooks.uncertainty = RewardModelUncertainty()
