"""The model registry: base and trained models (ModelArtifact), registration from a folder, the
hub or GGUF, loading a registered model into memory, and the score endpoint's worker side.
May import training.core and training.recipes; never runs/, loop/, views."""
