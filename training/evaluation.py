"""Policy evaluation: on held-out prompts, a policy and its reference (or any two registered
policies) each answer once; a registered reward model judges each pair.

Reported (the job's result, shown on the policy's page):
- RM win rate of the policy over the reference, a tie counting half, with n and a 95 % Wilson
  score interval (better than the normal approximation for small n and rates near 0 or 1);
- mean KL of the policy to the reference, estimated on the policy's own samples: per answer the
  sum over its tokens of log π(y_t) − log π_ref(y_t) (the k1 estimator; unbiased for KL(π‖π_ref)
  because y is drawn from π), both at the sampling temperature;
- mean answer length in tokens and the share of answers that ended (eos before max_new_tokens);
- every pair of answers with both scores, for the side-by-side browser.

`evaluate_after_run(run)` is what a policy run calls at its end (see its docstring)."""
from __future__ import annotations

import math

from django.db import transaction

from training.generation import GenerationError, Sampling, policy_validate
from training.job_models import Job
from training.models import ModelArtifact
from training.prompt_sources import prompt_source, prompts_load

DEFAULT_PROMPTS = 64
MAX_PROMPTS = 2000
SAMPLES_KEPT = 200


def wilson_interval(successes: float, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (successes may be fractional: ties count half)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


TIE_TOLERANCE = 1e-6  # batched scoring differs in the last float bits with padding; that is no preference


def _verdict(p: float, r: float) -> str:
    if abs(p - r) <= TIE_TOLERANCE * max(1.0, abs(p), abs(r)):
        return "tie"
    return "policy" if p > r else "reference"


def win_rate(policy_scores: list[float], reference_scores: list[float]) -> dict:
    verdicts = [_verdict(p, r) for p, r in zip(policy_scores, reference_scores)]
    wins, ties = verdicts.count("policy"), verdicts.count("tie")
    n = len(policy_scores)
    lo, hi = wilson_interval(wins + 0.5 * ties, n)
    return {"n": n, "wins": wins, "ties": ties, "losses": n - wins - ties,
            "win_rate": (wins + 0.5 * ties) / n if n else None, "ci_low": lo, "ci_high": hi}


def evaluation_create(*, policy: ModelArtifact, reference: ModelArtifact | None, reward_model: ModelArtifact, project,
                      snapshot=None, prompts_project=None, split: str = "test", limit: int = DEFAULT_PROMPTS,
                      sampling: Sampling | None = None, run=None, created_by=None) -> Job:
    """Validate and queue an evaluation on the gpu worker. reference defaults to the policy's
    base model. `project` is the project the job belongs to (permissions, listing)."""
    policy_validate(policy)
    reference = reference or policy.base_model
    if reference is None:
        raise GenerationError(f"reference: {policy.name} has no base model; name a reference policy")
    policy_validate(reference)
    if reference.pk == policy.pk:
        raise GenerationError("reference: a policy compared with itself says nothing")
    if reward_model.kind != ModelArtifact.Kind.REWARD_MODEL:
        raise GenerationError(f"reward_model: {reward_model.name} is a {reward_model.get_kind_display().lower()}, not a reward model")
    if not 1 <= int(limit) <= MAX_PROMPTS:
        raise GenerationError(f"limit: {limit} must be 1..{MAX_PROMPTS}")
    sampling = (sampling or Sampling()).validate()
    params = {
        "reference": reference.pk, "reference_name": reference.name,
        "reward_model": reward_model.pk, "reward_model_name": reward_model.name,
        "prompts": prompt_source(snapshot=snapshot, project=prompts_project, split=split),
        "limit": int(limit), "sampling": sampling.as_dict(),
    }
    from training.jobs import job_enqueue

    with transaction.atomic():
        job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, run=run, params=params, created_by=created_by)
        job_enqueue(job=job)
    return job


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
    return evaluation_create(policy=policy, reference=run.base_model, reward_model=judge, project=run.project,
                             snapshot=run.snapshot, limit=limit, run=run, created_by=run.created_by)


def policy_compare(*, policy: ModelArtifact, reference: ModelArtifact, reward_model: ModelArtifact, prompts: list,
                   sampling: Sampling, on_progress=None, batch_size: int = 8) -> dict:
    """The evaluation itself (torch on this process). on_progress(done, total) after each step."""
    from training.generation import generate, policy_load, response_logprobs
    from training.scoring import score

    total = 3 * len(prompts)  # policy answers, reference answers, then log-probs and scores
    step = on_progress or (lambda done, total: None)
    net, tokenizer = policy_load(policy)
    answers = generate(net=net, tokenizer=tokenizer, prompts=prompts, sampling=sampling, batch_size=batch_size,
                       on_batch=lambda done: step(done, total))
    # A LoRA policy's base is its reference with the adapter switched off: no second copy in memory.
    shared = policy.is_adapter and policy.base_model_id == reference.pk
    if shared:
        with net.disable_adapter():
            ref_answers = generate(net=net, tokenizer=tokenizer, prompts=prompts, sampling=sampling, batch_size=batch_size,
                                   on_batch=lambda done: step(len(prompts) + done, total))
    else:
        ref_net, ref_tok = policy_load(reference)
        ref_answers = generate(net=ref_net, tokenizer=ref_tok, prompts=prompts, sampling=sampling, batch_size=batch_size,
                               on_batch=lambda done: step(len(prompts) + done, total))
        if ref_tok.get_vocab() != tokenizer.get_vocab():
            raise GenerationError(f"reference: {reference.name} has another tokenizer than {policy.name}; KL needs the same one")
    kls, policy_scores, reference_scores, samples = [], [], [], []
    for i, (prompt, mine, theirs) in enumerate(zip(prompts, answers, ref_answers)):
        mine, theirs = mine[0], theirs[0]
        kw = dict(prompt_ids=mine["prompt_ids"], response_ids=mine["response_ids"], temperature=sampling.temperature)
        logp = response_logprobs(net=net, **kw)
        if shared:
            with net.disable_adapter():
                logq = response_logprobs(net=net, **kw)
        else:
            logq = response_logprobs(net=ref_net, **kw)
        kls.append(sum(logp) - sum(logq))
        s_policy, s_reference = score(model=reward_model, prompt=prompt, responses=[mine["text"], theirs["text"]])
        policy_scores.append(s_policy)
        reference_scores.append(s_reference)
        if len(samples) < SAMPLES_KEPT:
            samples.append({"prompt": prompt, "policy": mine["text"], "reference": theirs["text"],
                            "policy_score": s_policy, "reference_score": s_reference,
                            "winner": _verdict(s_policy, s_reference)})
        if (i + 1) % 8 == 0 or i + 1 == len(prompts):
            step(2 * len(prompts) + i + 1, total)

    def mean(values):
        return sum(values) / len(values) if values else None

    return {
        **win_rate(policy_scores, reference_scores),
        "kl_mean": mean(kls),
        "kl_estimator": "k1 on the policy's samples (nats per answer)",
        "policy_length_mean": mean([len(a[0]["response_ids"]) for a in answers]),
        "reference_length_mean": mean([len(a[0]["response_ids"]) for a in ref_answers]),
        "policy_finished_share": mean([float(a[0]["finished"]) for a in answers]),
        "reference_finished_share": mean([float(a[0]["finished"]) for a in ref_answers]),
        "policy_score_mean": mean(policy_scores),
        "reference_score_mean": mean(reference_scores),
        "policy": policy.name,
        "reference": reference.name,
        "reward_model": reward_model.name,
        "sampling": sampling.as_dict(),
        "samples": samples,
    }


def evaluation_execute(*, job: Job, progress) -> dict:
    """What the worker runs for an evaluation job (training.jobs.job_execute)."""
    params = job.params
    reference = ModelArtifact.objects.select_related("base_model").get(pk=params["reference"])
    reward_model = ModelArtifact.objects.select_related("base_model").get(pk=params["reward_model"])
    prompts = prompts_load(params["prompts"], limit=params.get("limit"))
    progress.step(done=0, total=3 * len(prompts))
    result = policy_compare(policy=job.policy, reference=reference, reward_model=reward_model, prompts=prompts,
                            sampling=Sampling(**params.get("sampling", {})),
                            on_progress=lambda done, total: progress.step(done=done, total=total))
    result["prompts"] = params["prompts"].get("label", "")
    return result
