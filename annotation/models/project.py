from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.kinds import Kind


class Role(models.TextChoices):
    RATER = "rater", "Rater"
    RESEARCHER = "researcher", "Researcher"
    MANAGER = "manager", "Manager"


# Higher rank includes what the lower ranks may see (a manager may do what a researcher does).
ROLE_RANK = {Role.RATER: 1, Role.RESEARCHER: 2, Role.MANAGER: 3}


class Project(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown shown to raters; one key away while labelling.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BINARY)

    # Kind settings. Only the ones of the project's kind matter; kinds.validate_settings checks them.
    allow_tie = models.BooleanField(default=True, help_text="Binary: raters may answer 'tie'.")
    allow_both_bad = models.BooleanField(default=True, help_text="Binary: raters may answer 'both bad'.")
    likert_points = models.PositiveSmallIntegerField(default=7, validators=[MinValueValidator(3), MaxValueValidator(11)])
    likert_labels = models.JSONField(default=list, blank=True, help_text="Optional label per point, from 'A much better' to 'B much better'.")
    ranking_k = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(2), MaxValueValidator(10)])
    ranking_allow_ties = models.BooleanField(default=False)
    rating_min = models.SmallIntegerField(default=1)
    rating_max = models.SmallIntegerField(default=5)
    rating_threshold = models.SmallIntegerField(default=4, help_text="A rating at or above this is 'good'.")
    rating_labels = models.JSONField(default=list, blank=True, help_text="Optional label per score, lowest first.")

    # A prompt set feeds online RL (PPO, RLOO, GRPO): its items may come without responses, and
    # the rater queue hands none of them out (there is nothing to judge).
    prompt_set = models.BooleanField(default=False, help_text="Prompts for online RL (PPO, RLOO, GRPO): items may have no responses; raters get no items.")

    overlap = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="Distinct raters per item.")
    lease_seconds = models.PositiveIntegerField(default=600, validators=[MinValueValidator(30)], help_text="How long a rater holds an item before it returns to the pool.")

    # Quality control (gold items).
    gold_rate = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], help_text="Share of a rater's queue drawn from gold items.")
    gold_pause_threshold = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], help_text="Pause raters whose gold accuracy falls below this.")
    gold_min_answers = models.PositiveSmallIntegerField(default=5, help_text="Gold answers needed before a rater can be paused.")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived = models.BooleanField(default=False)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def candidates_per_item(self) -> int | None:
        """How many candidates an item must have, or None when any number >= 1 is fine."""
        if self.kind in (Kind.BINARY, Kind.LIKERT):
            return 2
        if self.kind == Kind.RANKING:
            return self.ranking_k
        return None


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RATER)
    # Set by the gold-accuracy check (or by a manager): a paused rater gets no new items and
    # their judgments are left out of snapshots.
    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=200, blank=True)
    # Gold answers before this moment do not count toward pausing: a manager who unpauses a
    # rater gives them a fresh start instead of a re-pause on their next gold answer.
    gold_counted_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]
        indexes = [models.Index(fields=["user", "project"])]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.project}"

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]
