from annotation.models.item import Candidate, ImportBatch, Item
from annotation.models.judgment import Assignment, Judgment
from annotation.models.project import Membership, Project, Role
from annotation.models.snapshot import DatasetSnapshot

__all__ = [
    "Assignment",
    "Candidate",
    "DatasetSnapshot",
    "ImportBatch",
    "Item",
    "Judgment",
    "Membership",
    "Project",
    "Role",
]
