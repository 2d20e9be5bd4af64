"""Policy evaluation: on held-out prompts, a policy and its reference (or any two registered
policies) each answer once; a registered reward model judges each pair.

Reported (the job's result, shown on the policy's page):
- RM win rate of the policy over the reference, a tie counting half, with n and a 95 % Wilson
  score interval (better than the normal approximation for small n and rates near 0 or 1);
- mean KL of the policy to the reference, estimated on the policy's own samples: per answer the
  sum over its tokens of log π(y_t) − log π_ref(y_t) (the k1 estimator; unbiased for KL(π‖π_ref)
  because y is drawn from π). π is what the samples come from: the policy at the sampling
  temperature, renormalised over the top_p nucleus when top_p < 1; π_ref is the reference at that
  temperature, untruncated. The result's `kl_estimator` says so in words, on the job's page;
- mean answer length in tokens and the share of answers that ended (eos before max_new_tokens);
- every pair of answers with both scores, for the side-by-side browser.
The comparison itself is training/rl/comparison.py::compare, which online runs end with too;
this module loads the registered models for it and queues the job.

`evaluate_after_run(run)` is what a policy run calls at its end (see its docstring)."""
from __future__ import annotations

from django.db import transaction

from training.loop.generation import GenerationError, Sampling, policy_validate, with_article
from training.loop.models import Job
from training.registry.models import ModelArtifact
from training.loop.prompt_sources import prompt_source, prompts_load

DEFAULT_PROMPTS = 64
MAX_PROMPTS = 2000


def evaluation_create(*, policy: ModelArtifact, reference: ModelArtifact | None, reward_model: ModelArtifact, project,
                      snapshot=None, prompts_project=None, split: str = "test", limit: int = DEFAULT_PROMPTS,
                      sampling: Sampling | None = None, run=None, created_by=None, reward_weights=None) -> Job:
    """Validate and queue an evaluation on the gpu worker. reference defaults to the policy's
    base model. `project` is the project the job belongs to (permissions, listing). `reward_weights`:
    how a multi-objective reward model's heads combine (a dict or "a=1, b=0.5"; None: its defaults)."""
    policy_validate(policy, field="policy")
    reference = reference or policy.base_model
    if reference is None:
        raise GenerationError(f"reference: {policy.name} has no base model; name a reference policy")
    policy_validate(reference, field="reference")
    if reference.pk == policy.pk:
        raise GenerationError("reference: a policy compared with itself says nothing")
    reward_model_validate(reward_model)
    if not 1 <= int(limit) <= MAX_PROMPTS:
        raise GenerationError(f"limit: {limit} must be 1..{MAX_PROMPTS}")
    sampling = (sampling or Sampling()).validate()
    weights = reward_weights_checked(reward_model, reward_weights)
    params = {
        "reference": reference.pk, "reference_name": reference.name,
        "reward_model": reward_model.pk, "reward_model_name": reward_model.name,
        "prompts": prompt_source(snapshot=snapshot, project=prompts_project, split=split),
        "limit": int(limit), "sampling": sampling.as_dict(),
        **({"reward_weights": weights} if weights else {}),
    }
    from training.loop.jobs import job_enqueue

    with transaction.atomic():
        job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, run=run, params=params, created_by=created_by)
        job_enqueue(job=job)
    return job


def reward_model_validate(reward_model: ModelArtifact) -> ModelArtifact:
    if reward_model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise GenerationError(f"reward_model: {reward_model.name} is {with_article(reward_model.get_kind_display().lower())}, not a reward model")
    return reward_model


def reward_weights_checked(reward_model: ModelArtifact, raw) -> dict[str, float] | None:
    """Weights checked against the reward model's heads (its arbiter_heads.json) before the job queues."""
    from training.core.heads import WeightsError, heads_read, weights_check, weights_parse
    from training.registry.services import model_path

    try:
        weights = weights_parse(raw, field="reward_weights")
        if weights:
            weights_check(heads_read(model_path(reward_model)), weights, field="reward_weights", model=reward_model.name)
    except (WeightsError, ValueError) as exc:
        raise GenerationError(str(exc)) from None
    return weights


def evaluate_after_run(run, *, reward_model: ModelArtifact | None = None, limit: int = DEFAULT_PROMPTS) -> Job | None:
    """Queue the evaluation of a finished policy run's model against its base model, on the
    run's snapshot's test split. For the runner to call after it registered the run's model
    (DPO, SFT, KTO, PPO, RLOO, GRPO: anything whose output is a policy).

    The judge is `reward_model`, else the run's own reward model (`run.reward_model`, online
    methods), else `run.config["eval_reward_model"]` (a model id or name). With none, or without
    a registered output policy, it returns None and queues nothing: an evaluation needs a judge.
    Calling it twice queues two evaluations; the runner calls it once, inside its success path."""
    policy = ModelArtifact.objects.filter(run=run).first()
    if policy is None or policy.kind not in (ModelArtifact.Kind.POLICY, ModelArtifact.Kind.CAUSAL_LM):
        return None
    judge = reward_model or getattr(run, "reward_model", None)
    wanted = (run.config or {}).get("eval_reward_model")
    if judge is None and wanted:
        field = "pk" if str(wanted).isdigit() else "name"
        judge = ModelArtifact.objects.filter(**{field: wanted}, kind=ModelArtifact.Kind.REWARD_MODEL).first()
    if judge is None:
        return None
    # An online run judged by its own reward model is judged under the weights it was trained with.
    own = getattr(run, "reward_model_id", None) is not None and judge.pk == run.reward_model_id
    return evaluation_create(policy=policy, reference=run.base_model, reward_model=judge, project=run.project,
                             snapshot=run.snapshot, limit=limit, run=run, created_by=run.created_by,
                             reward_weights=(run.config or {}).get("attribute_weights") if own else None)


def policy_compare(*, policy: ModelArtifact, reference: ModelArtifact, reward_model: ModelArtifact, prompts: list,
                   sampling: Sampling, on_progress=None, batch_size: int = 8, reward_weights: dict[str, float] | None = None) -> dict:
    """The evaluation itself (torch on this process): load the registered models, then the one
    comparison (training/rl/comparison.py). on_progress(done, total) after each step."""
    from training.loop.generation import policy_load
    from training.rl.comparison import compare
    from training.registry.scoring import reward_model_load

    net, tokenizer = policy_load(policy)
    # A LoRA policy's base is its reference with the adapter switched off: no second copy in memory.
    ref_net = None
    if not (policy.is_adapter and policy.base_model_id == reference.pk):
        ref_net, ref_tok = policy_load(reference)
        if ref_tok.get_vocab() != tokenizer.get_vocab():
            raise GenerationError(f"reference: {reference.name} has another tokenizer than {policy.name}; KL needs the same one")
    result = compare(policy=net, reference=ref_net, tokenizer=tokenizer, reward=reward_model_load(reward_model, weights=reward_weights), prompts=prompts,
                     sampling=sampling, batch_size=batch_size, on_progress=on_progress)
    return {**result, "policy": policy.name, "reference": reference.name, "reward_model": reward_model.name,
            **({"reward_weights": reward_weights} if reward_weights else {})}


def evaluation_execute(*, job: Job, progress) -> dict:
    """What the worker runs for an evaluation job (training.loop.jobs.job_execute)."""
    params = job.params
    reference = ModelArtifact.objects.select_related("base_model").get(pk=params["reference"])
    reward_model = ModelArtifact.objects.select_related("base_model").get(pk=params["reward_model"])
    prompts = prompts_load(params["prompts"], limit=params.get("limit"))
    progress.step(done=0, total=3 * len(prompts))
    result = policy_compare(policy=job.policy, reference=reference, reward_model=reward_model, prompts=prompts,
                            sampling=Sampling(**params.get("sampling", {})), reward_weights=params.get("reward_weights"),
                            on_progress=lambda done, total: progress.step(done=done, total=total))
    result["prompts"] = params["prompts"].get("label", "")
    return result
