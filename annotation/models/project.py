from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.kinds import Kind
from config.jsonlimits import ScrubbingDecoder


class Role(models.TextChoices):
    RATER = "rater", "Rater"
    RESEARCHER = "researcher", "Researcher"
    MANAGER = "manager", "Manager"


# The one source of the bounds of every numeric project setting: the model's validators below,
# which the service (full_clean), the API serializer (DRF reads them) and the form all apply.
# Unbounded, a lease of 10**12 seconds was accepted and then every "next" failed (datetime overflow).
SETTING_BOUNDS = {
    "likert_points": (3, 11),
    "ranking_k": (2, 10),
    "ranking_min_k": (2, 10),
    "rating_min": (-100, 100),
    "rating_max": (-100, 100),
    "rating_threshold": (-100, 100),
    "overlap": (1, 50),
    "lease_seconds": (30, 7 * 24 * 3600),  # a week
    "edit_window_minutes": (0, 60 * 24 * 365),  # a year
    "gold_rate": (0.0, 1.0),
    "gold_pause_threshold": (0.0, 1.0),
    "gold_min_answers": (1, 1000),
}


def _bounds(name: str) -> list:
    low, high = SETTING_BOUNDS[name]
    return [MinValueValidator(low), MaxValueValidator(high)]


# Higher rank includes what the lower ranks may see (a manager may do what a researcher does).
ROLE_RANK = {Role.RATER: 1, Role.RESEARCHER: 2, Role.MANAGER: 3}


class Project(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown shown to raters; one key away while labelling.")
    # The AI judge's constitution (RLAIF): one principle per line, added to the instructions in its prompt.
    principles = models.TextField(blank=True, help_text="AI judge: one principle per line (a constitution), added to the instructions in the judge's prompt.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.BINARY)

    # Kind settings. Only the ones of the project's kind matter; kinds.validate_settings checks them.
    allow_tie = models.BooleanField(default=True, help_text="Binary: raters may answer 'tie'.")
    allow_both_bad = models.BooleanField(default=True, help_text="Binary: raters may answer 'both bad'.")
    likert_points = models.PositiveSmallIntegerField(default=7, validators=_bounds("likert_points"))
    likert_labels = models.JSONField(decoder=ScrubbingDecoder, default=list, blank=True, help_text="Optional label per point, from 'A much better' to 'B much better'.")
    # A ranking project takes items with ranking_min_k..ranking_k responses each (real data has
    # 2 to 9 replies per prompt); ranking_k, the largest K, keeps its name for the API's sake.
    ranking_k = models.PositiveSmallIntegerField(default=4, validators=_bounds("ranking_k"), verbose_name="most responses per item", help_text="Ranking: the most responses an item may have.")
    ranking_min_k = models.PositiveSmallIntegerField(default=2, validators=_bounds("ranking_min_k"), verbose_name="fewest responses per item", help_text="Ranking: the fewest responses an item may have.")
    ranking_allow_ties = models.BooleanField(default=False)
    rating_min = models.SmallIntegerField(default=1, validators=_bounds("rating_min"))
    rating_max = models.SmallIntegerField(default=5, validators=_bounds("rating_max"))
    rating_threshold = models.SmallIntegerField(default=4, validators=_bounds("rating_threshold"), help_text="A rating at or above this is 'good'.")
    rating_labels = models.JSONField(decoder=ScrubbingDecoder, default=list, blank=True, help_text="Optional label per score, lowest first.")

    # Questions beside the primary judgment (annotation.questions): per-response scales such as
    # HelpSteer's helpfulness 0-4, multi-label choices, short text. [] asks none.
    questions = models.JSONField(decoder=ScrubbingDecoder, default=list, blank=True, help_text="Questions asked beside the judgment (annotation/questions.py): scales, labels, text.")

    class Demonstrations(models.TextChoices):
        OFF = "off", "Off"
        ALONGSIDE = "alongside", "Alongside the judgment"
        INSTEAD = "instead", "Alongside or instead of the judgment"

    # Demonstrations (SFT data): raters write a response, or rewrite the best candidate.
    demonstrations = models.CharField(max_length=16, choices=Demonstrations.choices, default=Demonstrations.OFF, help_text="Raters may write a response of their own (W), alongside or instead of their judgment.")
    # My work: how long after submitting a rater may still change a judgment (a new version).
    edit_window_minutes = models.PositiveIntegerField(default=60, validators=_bounds("edit_window_minutes"), help_text="Minutes after submitting during which a rater may change their judgment (0: never).")

    # A prompt set feeds online RL (PPO, RLOO, GRPO): its items may come without responses, and
    # the rater queue hands none of them out (there is nothing to judge).
    prompt_set = models.BooleanField(default=False, help_text="Prompts for online RL (PPO, RLOO, GRPO): items may have no responses; raters get no items.")

    overlap = models.PositiveSmallIntegerField(default=1, validators=_bounds("overlap"), help_text="Distinct raters per item.")
    lease_seconds = models.PositiveIntegerField(default=600, validators=_bounds("lease_seconds"), help_text="How long a rater holds an item before it returns to the pool.")

    # Quality control (gold items).
    gold_rate = models.FloatField(default=0.0, validators=_bounds("gold_rate"), help_text="Share of a rater's queue drawn from gold items.")
    gold_pause_threshold = models.FloatField(null=True, blank=True, validators=_bounds("gold_pause_threshold"), help_text="Pause raters whose gold accuracy falls below this.")
    gold_min_answers = models.PositiveSmallIntegerField(default=5, validators=_bounds("gold_min_answers"), help_text="Gold answers needed before a rater can be paused.")

    # Which item a rater gets next, among those with the fewest judgments (annotation/selection.py);
    # the reward model of `uncertain` is training's (training/selection/models.py).
    class Selection(models.TextChoices):
        FEWEST = "fewest", "Fewest judgments first, oldest first"
        RANDOM = "random", "Fewest judgments first, random order"
        UNCERTAIN = "uncertain", "Fewest judgments first, the reward model's least certain first"

    selection = models.CharField(max_length=16, choices=Selection.choices, default=Selection.FEWEST)
    # The last scoring job: {"state": queued|running|done|failed, "model": ..., "scored": n, "total": n, "at": iso, "error": ...}
    selection_status = models.JSONField(default=dict, blank=True)

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
        """How many candidates an item must have when the kind fixes one number, else None."""
        low, high = self.candidates_range
        return low if low == high else None

    @property
    def candidates_range(self) -> tuple[int, int | None]:
        """(fewest, most) candidates an item may have; most is None when unbounded."""
        if self.kind in (Kind.BINARY, Kind.LIKERT):
            return 2, 2
        if self.kind == Kind.RANKING:
            return min(self.ranking_min_k, self.ranking_k), self.ranking_k
        return 1, None


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
