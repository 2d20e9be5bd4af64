import pytest
from django.core.management import CommandError, call_command

from annotation.models import DatasetSnapshot, Judgment, Project
from training.models import TrainingRun


@pytest.fixture
def demo(db):
    call_command("seed_demo", verbosity=0)
    return Project.objects.get(slug="demo-binary")


def test_it_refuses_to_train_on_a_project_without_judgments(demo):
    with pytest.raises(CommandError, match="label some items first"):
        call_command("demo_train", "--no-train")


def test_it_labels_with_a_stated_rule_and_builds_a_snapshot(demo):
    call_command("demo_train", "--simulate-raters", "--no-train")
    judgments = Judgment.objects.filter(project=demo)
    # Both demo raters labelled every item (overlap 2), each answer naming the rule it followed.
    assert judgments.count() >= 2 * demo.items.filter(is_gold=False).count()
    assert all("simulated by demo_train" in j.rationale for j in judgments)
    snapshot = DatasetSnapshot.objects.get(project=demo)
    assert snapshot.status == DatasetSnapshot.Status.READY
    assert not TrainingRun.objects.exists()


def test_it_names_an_unknown_base_model(demo):
    with pytest.raises(CommandError, match="--base-model"):
        call_command("demo_train", "--simulate-raters", "--base-model", "nope")
