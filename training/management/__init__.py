"""Management commands of training/: thin wrappers over the services."""
