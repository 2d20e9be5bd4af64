"""The demo loop end to end with tiny models (the real command runs SmolLM2 and MiniLM)."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Candidate, Project
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun


@pytest.fixture
def tiny_loop_models(tiny_model):
    return tiny_model("tiny-policy", seed=0)


def _rm_base(settings):
    """A tiny sequence-classification base for the reward model, registered as an encoder."""
    from pathlib import Path

    from tests.tiny_models import tiny_reward_model
    from tests.training.conftest import build_tokenizer

    tok = build_tokenizer()
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "tiny-rm-base"
    folder.mkdir(parents=True)
    tiny_reward_model(tok).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return ModelArtifact.objects.create(name="tiny-rm-base", kind=ModelArtifact.Kind.ENCODER, source=ModelArtifact.Source.LOCAL, path="models/tiny-rm-base")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_runs_the_loop_end_to_end_with_tiny_models(tiny_loop_models, settings):
    _rm_base(settings)
    out = StringIO()
    call_command("demo_loop", "--policy", "tiny-policy", "--reward-base", "tiny-rm-base", "--rl-steps", "2",
                 "--prompts", "4", "--max-new-tokens", "6", stdout=out)
    text = out.getvalue()
    # 1. simulated raters labelled, a reward model was trained on their snapshot
    assert "simulated raters stored" in text and "reward model tiny-rm-base-reward-run" in text
    assert TrainingRun.objects.get(method="reward").status == "succeeded"
    # 2. a policy run (online RL when its recipe is registered, DPO until then) made a new policy
    policy_run = TrainingRun.objects.exclude(method="reward").get()
    assert policy_run.status == "succeeded", policy_run.error
    new_policy = ModelArtifact.objects.get(run=policy_run)
    # 3. evaluated against its base by the reward model
    evaluation = Job.objects.get(kind=Job.Kind.EVALUATION)
    from training.loop.generation import prompts_from_snapshot
    from training.core.paths import artifact_path

    held_out = prompts_from_snapshot(folder=artifact_path(policy_run.snapshot.path))  # the demo's test split: a few prompts
    assert evaluation.status == "succeeded" and evaluation.result["n"] == len(held_out) > 0
    assert f"RM win rate of {new_policy.name} over tiny-policy" in text
    # 4. new candidates went to a fresh project for raters, named by model and temperature
    target = Project.objects.get(slug="demo-loop-1")
    assert target.items.count() == 4
    assert set(Candidate.objects.filter(item__project=target).values_list("model_name", flat=True)) == {
        f"{new_policy.name} T=0.7", "tiny-policy T=0.7"}
    assert "loop done in" in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_skips_the_policy_run_when_asked(tiny_loop_models, settings):
    _rm_base(settings)
    out = StringIO()
    call_command("demo_loop", "--policy", "tiny-policy", "--reward-base", "tiny-rm-base", "--skip-rl",
                 "--prompts", "3", "--max-new-tokens", "4", stdout=out)
    assert "2. policy run: skipped" in out.getvalue()
    assert not TrainingRun.objects.exclude(method="reward").exists() and not Job.objects.filter(kind="evaluation").exists()
    names = set(Candidate.objects.filter(item__project__slug="demo-loop-1").values_list("model_name", flat=True))
    assert names == {"tiny-policy T=0.3", "tiny-policy T=0.7"}


def test_it_names_an_unknown_policy(db):
    with pytest.raises(CommandError, match="--policy: no registered model 'ghost'"):
        call_command("demo_loop", "--policy", "ghost", "--skip-rl", stdout=StringIO())
