"""The ground floor of training: how a model sees a prompt, the one batched reward scorer,
Wilson intervals, artifact paths, and who may read a project or snapshot.
Imports nothing else of training/, and no torch at import time."""
