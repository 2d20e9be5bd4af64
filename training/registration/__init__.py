"""Model registration from the browser as a job on the `jobs` queue: the row (models.py), what the
web process does (services.py: validate, refuse a second registration of one name while the first
converts, queue) and what the worker does (job.py: claim, register through
training.registry.services, record the model or the error). The registry's own checks (staff
only for paths, ARBITER_MODEL_ROOTS, symlinks resolved) run unchanged: in the web process before
queueing, and again in the worker.

A package of its own because it joins the registry and the shared job lifecycle
(training/runs/lifecycle.py), and the registry package imports nothing of runs/."""
