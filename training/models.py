"""Django looks for the app's models here; each lives in the package of its concern."""
from training.judge.models import JudgeJob
from training.loop.models import Job
from training.registration.models import RegistrationJob
from training.registry.models import ModelArtifact
from training.runs.models import SnapshotForTraining, TrainingRun
from training.selection.models import SelectionChoice

__all__ = ["Job", "JudgeJob", "ModelArtifact", "RegistrationJob", "SelectionChoice", "SnapshotForTraining", "TrainingRun"]
