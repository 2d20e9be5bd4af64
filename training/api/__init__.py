"""The training REST API: thin DRF views over the same selectors and services as the pages."""
