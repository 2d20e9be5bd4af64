from annotation.models.item import Candidate, ImportBatch, Item
from annotation.models.judgment import Adjudication, Assignment, Demonstration, Judgment, JudgmentRevision
from annotation.models.project import Membership, Project, Role
from annotation.models.snapshot import DatasetSnapshot

__all__ = [
    "Adjudication",
    "Demonstration",
    "JudgmentRevision",
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
