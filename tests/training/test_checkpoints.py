"""An online run's checkpoints go back to raters: the run keeps them (at most keep_checkpoints) and
lists them with the reward model's score and KL at their step; any of them registers as a policy that
answers; "send checkpoints to raters" queues one batch with each checkpoint and the reference; once
raters ranked the answers, the run page shows each checkpoint's win rate over the reference with n and
marks the one the raters prefer."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from annotation.assignment import lease_next
from annotation.judgments import judgment_submit
from annotation.kinds import Kind
from annotation.models import Candidate, DatasetSnapshot
from tests.training import tiny_rl
from training.loop.models import Job
from training.models import ModelArtifact, TrainingRun
from training.runs.checkpoints import CheckpointError, checkpoint_register, checkpoints_to_raters

GRPO = dict(per_device_train_batch_size=8, num_generations=4, max_completion_length=6, temperature=1.0, logging_steps=1,
            eval_prompts=2, sample_prompts=0, seed=0, warmup_steps=0, lr_scheduler_type="constant", learning_rate=1e-2, beta=0.1,
            max_steps=8, save_steps=2, keep_checkpoints=3)


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def rl_pieces(db, settings, project, one_thread):
    """A tiny policy and a reward model that likes the word "thanks" (tests/training/tiny_rl.py),
    registered, and a prompt snapshot of the demo project."""
    root = Path(settings.ARTIFACT_ROOT)
    tok = tiny_rl.tokenizer()
    tiny_rl.save_policy(root / "models" / "tiny-policy", tok)
    tiny_rl.save_reward_model(root / "models" / "tiny-rm", tok)
    tiny_rl.write_prompt_snapshot(root / "snapshots" / "demo" / "v1", tiny_rl.PROMPTS, tiny_rl.HELD_OUT)
    base = ModelArtifact.objects.create(name="tiny-policy", kind=ModelArtifact.Kind.CAUSAL_LM, source=ModelArtifact.Source.LOCAL,
                                        path="models/tiny-policy")
    rm = ModelArtifact.objects.create(name="tiny-rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.LOCAL,
                                      path="models/tiny-rm")
    snapshot = DatasetSnapshot.objects.create(project=project, version=1, status=DatasetSnapshot.Status.READY, path="snapshots/demo/v1",
                                              progress=1.0)
    return dict(base=base, rm=rm, snapshot=snapshot)


def _grpo_run(project, rl_pieces, owner) -> TrainingRun:
    """A LoRA GRPO run of 8 updates, a checkpoint every 2, keeping 3, through the runner (in process)."""
    from training.runs.runner import attempt_run, run_claim

    run = TrainingRun.objects.create(project=project, snapshot=rl_pieces["snapshot"], base_model=rl_pieces["base"], method="grpo",
                                     reward_model=rl_pieces["rm"], use_lora=True, config=GRPO, created_by=owner)
    attempt = run_claim(run_id=run.pk, worker_name="test")
    assert attempt_run(run_id=run.pk, attempt=attempt, worker="test") == 0
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log_tail
    return run


@pytest.mark.slow
def test_it_sends_the_kept_checkpoints_to_raters_and_charts_their_verdict(project, make_project, rl_pieces, owner, member,
                                                                            client_for, django_capture_on_commit_callbacks):
    run = _grpo_run(project, rl_pieces, owner)

    # Kept: the newest three of the four saved (2, 4, 6, 8; more than save_total_limit's 2), each with
    # the score and KL logged at its step.
    kept = run.result["checkpoints"]
    assert [c["step"] for c in kept] == [4, 6, 8]
    points = {p["step"]: p for p in run.metrics}
    for c in kept:
        assert c["score"] == pytest.approx(points[c["step"]]["score"]) and c["kl"] == pytest.approx(points[c["step"]]["kl"])
        assert c["path"] == f"runs/{run.pk}/checkpoints/checkpoint-{c['step']}"

    # Registered: an adapter on the run's base, idempotent, without the optimizer state; it answers.
    model = checkpoint_register(run=run, step=4, user=owner)
    assert model.name == f"{run.output_model.name}@step-4" and model.kind == ModelArtifact.Kind.POLICY
    assert model.is_adapter and model.base_model == rl_pieces["base"] and model.source == ModelArtifact.Source.TRAINED
    assert checkpoint_register(run=run, step=4, user=owner) == model
    from training.core.paths import artifact_path
    from training.loop.generation import Sampling, generate, policy_load

    files = {f.name for f in artifact_path(model.path).iterdir()}
    assert "adapter_model.safetensors" in files and "optimizer.pt" not in files
    net, tok = policy_load(model, device="cpu")
    answers = generate(net=net, tokenizer=tok, prompts=["it is about rivers"], n=1, sampling=Sampling(temperature=1.0, max_new_tokens=4))
    assert 1 <= len(answers[0][0]["response_ids"]) <= 4

    # Sent: one batch, each item holding one answer per checkpoint and the reference's.
    target = make_project(Kind.RANKING, slug="ckpt-ranked", ranking_k=4, ranking_min_k=4)
    with django_capture_on_commit_callbacks(execute=True):
        res = client_for(owner).post(f"/training/runs/{run.pk}/checkpoints/raters/", {"project": "ckpt-ranked", "limit": "10"})
    assert res.status_code == 302, res.content
    job = Job.objects.get()
    assert res["Location"] == f"/training/jobs/{job.pk}/"
    assert job.status == Job.Status.SUCCEEDED, job.error
    names = [p["candidate_name"] for p in job.params["policies"]]
    ref = "tiny-policy T=1"
    assert names == [f"{run.output_model.name}@step-{s} T=1" for s in (4, 6, 8)] + [ref]
    assert job.result["items_created"] == target.items.count() > 0
    for item in target.items.all():
        assert sorted(item.candidates.values_list("model_name", flat=True)) == sorted(names)

    # Rated: the raters rank step 6 first, then the reference, then steps 8 and 4.
    order = [names[1], ref, names[2], names[0]]
    n = 0
    while (a := lease_next(project=target, rater=owner)) is not None:
        pos = {c.model_name: c.position for c in Candidate.objects.filter(item=a.item)}
        judgment_submit(assignment=a, rater=owner, value={"ranking": [[pos[m]] for m in order]}, duration_ms=1)
        n += 1
    page = client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
    rows = dict(re.findall(r'<tr data-checkpoint="(\d+)"(.*?)</tr>', page, re.S))
    assert n == target.items.count()
    assert "1.000 (n=%d: %d wins" % (n, n) in rows["6"] and "0.000 (n=%d: 0 wins" % n in rows["4"] and "0.000 (n=%d" % n in rows["8"]
    assert "data-preferred" in rows["6"] and "raters prefer" in rows["6"]
    assert "data-preferred" not in rows["4"] + rows["8"]
    assert "<svg" in page


@pytest.mark.slow
@pytest.mark.dbless
def test_it_keeps_ppo_checkpoints_as_loadable_policies(tmp_path, one_thread):
    """PPO's checkpoints hold its state for resuming and, beside it, the policy as a model."""
    from training.recipes.catalog import get
    from training.runs.results import checkpoint_records

    tok = tiny_rl.tokenizer()
    pieces = dict(policy=tiny_rl.save_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
                  snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "snapshot", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
    progress = tiny_rl.FakeProgress()
    config = dict(per_device_train_batch_size=8, max_new_tokens=6, max_steps=8, save_steps=2, keep_checkpoints=3, eval_prompts=2,
                  sample_prompts=0, reward_norm_samples=8)
    get("ppo").train_fn()(tiny_rl.context(tmp_path, method="ppo", config=config, use_lora=True, progress=progress, **pieces))
    records = checkpoint_records(tmp_path / "checkpoints", progress.points)
    assert [r["step"] for r in records] == [4, 6, 8]  # 2 is gone: keep_checkpoints, not save_total_limit (2)
    assert records[0]["path"].endswith("checkpoint-4/policy") and records[0]["score"] == progress.points[3]["score"]
    assert (Path(records[0]["path"]) / "adapter_config.json").is_file()


def _fake_run(project, snapshot, base_model, owner) -> TrainingRun:
    """A finished run row whose result lists two checkpoints (no files: enough for refusals and permissions)."""
    return TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, method="grpo", created_by=owner,
                                      status=TrainingRun.Status.SUCCEEDED,
                                      result={"checkpoints": [{"step": 2, "path": "runs/x/checkpoint-2", "score": 0.1, "kl": 0.0},
                                                              {"step": 4, "path": "runs/x/checkpoint-4", "score": 0.3, "kl": 0.2}]})


def test_it_refuses_a_project_that_cannot_take_every_checkpoint_and_the_reference(project, make_project, snapshot, base_model, owner,
                                                                                  client_for):
    run = _fake_run(project, snapshot, base_model, owner)
    with pytest.raises(CheckpointError, match=r"project: Demo is a binary project; 2 checkpoint\(s\) and the reference make 3 answers "
                                              r"per item: choose a ranking project whose K range holds 3"):
        checkpoints_to_raters(run=run, steps=None, project=project, user=owner)
    with pytest.raises(CheckpointError, match=r"is a rating project"):  # a rating project takes any number: still not a ranking
        checkpoints_to_raters(run=run, steps=None, project=make_project(Kind.RATING, slug="rated"), user=owner)
    make_project(Kind.RANKING, slug="small", ranking_k=2)
    res = client_for(owner).post(f"/training/runs/{run.pk}/checkpoints/raters/", {"project": "small"}, follow=True)
    assert "Checkpoints not sent: project: Small takes 2 answers per item" in res.content.decode()
    with pytest.raises(CheckpointError, match=r"step: run \d+ kept no checkpoint at step 3 \(kept: 2, 4\)"):
        checkpoints_to_raters(run=run, steps=[3], project=project, user=owner)
    assert not Job.objects.exists() and not ModelArtifact.objects.exclude(pk=base_model.pk).exists()


def test_where_training_logged_no_kl_the_chart_takes_the_kl_measured_on_the_raters_answers(project, make_project, snapshot,
                                                                                            base_model, owner):
    """GRPO at its default beta 0 computes no KL: the chart reads each checkpoint's KL from the
    checkpoint batch's reward-model verdict on the answers the raters got; a logged KL stays first."""
    from training.runs.checkpoints import checkpoint_figures, checkpoint_model_name

    run = _fake_run(project, snapshot, base_model, owner)
    run.result["checkpoints"][1]["kl"] = None
    run.save(update_fields=["result"])
    names = {step: f"{checkpoint_model_name(run, step)} T=0.7" for step in (2, 4)}
    target = make_project(Kind.RANKING, slug="ckpt", ranking_k=3)
    Job.objects.create(kind=Job.Kind.GENERATION, policy=base_model, project=target, run=run, status=Job.Status.SUCCEEDED,
                       params={"policies": [{"model": 0, "model_name": checkpoint_model_name(run, s), "candidate_name": names[s]}
                                            for s in (2, 4)] + [{"model": base_model.pk, "model_name": base_model.name,
                                                                 "candidate_name": f"{base_model.name} T=0.7"}]},
                       result={"reward_model_by_policy": {names[2]: {"kl_mean": 9.0}, names[4]: {"kl_mean": 3.5}}})
    rows = {r["step"]: r for r in checkpoint_figures(run=run, projects_readable=type(target).objects.all())["checkpoints"]}
    assert rows[4]["kl"] == 3.5  # measured on the answers
    assert rows[2]["kl"] == 0.0  # logged in training: kept


@pytest.mark.parametrize("who, code", [("member", 403), ("researcher", 403), ("outsider", 404)])
def test_it_lets_only_a_manager_of_the_run_send_or_register_checkpoints(project, make_project, snapshot, base_model, owner,
                                                                        client_for, request, who, code):
    from annotation.models import Membership, Role

    run = _fake_run(project, snapshot, base_model, owner)
    user = request.getfixturevalue(who)
    # A manager of the target project: only the run's own project stands in the way.
    target = make_project(Kind.RANKING, slug="ranked", ranking_k=3)
    Membership.objects.update_or_create(project=target, user=user, defaults={"role": Role.MANAGER})
    client = client_for(user)
    assert client.post(f"/training/runs/{run.pk}/checkpoints/raters/", {"project": "ranked"}).status_code == code
    assert client.post(f"/training/runs/{run.pk}/checkpoints/2/register/").status_code == code
    assert not Job.objects.exists() and not ModelArtifact.objects.exclude(pk=base_model.pk).exists()
    page = client.get(f"/training/runs/{run.pk}/")
    assert page.status_code == (200 if who == "researcher" else code)
    if who == "researcher":  # sees the checkpoints, not the form
        assert 'data-checkpoint="4"' in page.content.decode() and "Send checkpoints to raters" not in page.content.decode()
