"""Training runs: the row (TrainingRun), the lifecycle that runs and jobs share, creating and
cancelling runs, the gpu-worker runner, the child process group (torchrun / accelerate) and its
configs, and how a run's figures are shown. May import core, recipes and registry."""
