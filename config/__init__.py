from config.celery import app as celery_app
from config.converters import register as _register_converters

# Before any urls module is imported: a route names its converters when it is built.
_register_converters()

__all__ = ("celery_app",)
