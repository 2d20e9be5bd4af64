"""A policy against its reference on held-out prompts, judged by a reward model: the one comparison
behind evaluation jobs (training/loop/evaluation.py, registered models) and the end of online runs
(training/recipes/online.py, PPOTrainer.evaluate: the nets in memory).

Each prompt is answered once by each model (training/rl/sampling.py: the same Sampling, seeded per
batch position, so the same request gives the same answers); the reward model scores both
answers; the policy wins a prompt when its answer scores higher (a tie, within
training.core.stats.TIE_TOLERANCE, counts half). Reported:
- the win rate with n, wins/ties/losses and a 95 % Wilson interval (ci_low, ci_high);
- the mean KL of the policy to the reference, estimated on the policy's own samples: per answer
  the sum over its tokens of log π(y_t) − log π_ref(y_t) (the k1 estimator), unbiased for
  KL(π‖π_ref) because y is drawn from π. π is the distribution the samples come from: the
  policy at the sampling temperature and, with top_p < 1, renormalised over the nucleus kept at
  each step (training/rl/sampling.py::response_logprobs). π_ref is the reference at the same
  temperature, untruncated: truncating it too could leave a sampled token outside its nucleus
  and the KL infinite. `kl_estimator` says which distributions the figure compares;
- mean answer lengths in tokens, the share of answers that ended (eos before max_new_tokens),
  mean scores, the sampling settings, and the pairs side by side with both scores and the winner.

Any two causal LMs that share a tokenizer can be compared; with a LoRA policy the reference is
the same network with its adapter off (reference=None): no second copy in memory. No Django here.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

from training.rl.sampling import Sampling, generate, response_logprobs
from training.core.stats import verdict, win_rate



def kl_measured(sampling: Sampling) -> str:
    """What kl_mean compares, in words for the evaluation page (see the module's docstring)."""
    if sampling.temperature == 0:
        return "k1 on the policy's greedy answers: log-probs at temperature 1, not a KL estimate"
    policy = f"the policy at T={sampling.temperature:g}"
    if sampling.top_p < 1:
        policy += f" truncated to its top_p={sampling.top_p:g} nucleus and renormalised (the distribution sampled)"
    return f"k1 on the policy's samples: KL({policy} ‖ the reference at T={sampling.temperature:g}, untruncated)"

SAMPLES_KEPT = 200


@contextmanager
def _eval_mode(*nets):
    """Dropout off while answering (an online run's policy is in training mode), restored after."""
    nets = [n for n in nets if n is not None]
    was = [n.training for n in nets]
    for n in nets:
        n.eval()
    try:
        yield
    finally:
        for n, mode in zip(nets, was):
            n.train(mode)


def _mean(values):
    return sum(values) / len(values) if values else None


def compare(*, policy, reference, tokenizer, reward, prompts: list, sampling: Sampling, batch_size: int = 8,
            on_progress=None, samples_kept: int = SAMPLES_KEPT, answers: list | None = None,
            ref_answers: list | None = None) -> dict:
    """The policy against `reference` (None: the policy with its LoRA adapter off) on `prompts`.

    `answers` / `ref_answers`: answers already drawn (as generate() returns them, one list per
    prompt, the first used) with `sampling`, e.g. the pairs a generation batch sends to raters, so
    that the reward model judges the very pairs the raters judge; each side not given is generated.

    `reward`: callable (prompts, response texts) -> one score per text (a tensor or a list; e.g.
    training.rl.models.RewardModel). `on_progress(done, total)`: after each step, total being
    3 × the prompts (policy answers, reference answers, then log-probs and scores). Returns the
    figures (see the module's docstring) with `samples`, the first `samples_kept` pairs."""
    if reference is None and prompts and not hasattr(policy, "disable_adapter"):
        raise ValueError("a full (not LoRA) policy needs its reference model to be compared with")
    sampling = sampling.validate()
    total = 3 * len(prompts)
    step = on_progress or (lambda done, total: None)
    ref_net = policy if reference is None else reference
    off = policy.disable_adapter if reference is None else nullcontext

    with _eval_mode(policy, reference):
        if answers is None:
            answers = generate(net=policy, tokenizer=tokenizer, prompts=prompts, sampling=sampling, batch_size=batch_size,
                               on_batch=lambda done: step(done, total))
        if ref_answers is None:
            with off():
                ref_answers = generate(net=ref_net, tokenizer=tokenizer, prompts=prompts, sampling=sampling, batch_size=batch_size,
                                       on_batch=lambda done: step(len(prompts) + done, total))
        kls, policy_scores, reference_scores = [], [], []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            mine = [a[0] for a in answers[start : start + batch_size]]
            theirs = [a[0] for a in ref_answers[start : start + batch_size]]
            # The policy's log-probs in the distribution its answers were drawn from (nucleus included);
            # the reference's at the temperature alone, so that the KL stays finite.
            logp = response_logprobs(net=policy, answers=mine, temperature=sampling.temperature, top_p=sampling.top_p,
                                     batch_size=batch_size)
            with off():
                logq = response_logprobs(net=ref_net, answers=mine, temperature=sampling.temperature, batch_size=batch_size)
            kls += [p - q for p, q in zip(logp, logq)]
            # Both sides in one call: the same batches, so equal answers get equal scores.
            scores = [float(s) for s in reward(chunk + chunk, [a["text"] for a in mine + theirs])]
            policy_scores += scores[: len(chunk)]
            reference_scores += scores[len(chunk) :]
            step(2 * len(prompts) + start + len(chunk), total)

    samples = [{"prompt": prompt, "policy": a[0]["text"], "reference": b[0]["text"], "policy_score": p, "reference_score": r,
                "winner": verdict(p, r)}
               for prompt, a, b, p, r in zip(prompts, answers, ref_answers, policy_scores, reference_scores)][:samples_kept]
    return {
        **win_rate(policy_scores, reference_scores),
        "kl_mean": _mean(kls),
        "kl_estimator": kl_measured(sampling),
        "policy_length_mean": _mean([len(a[0]["response_ids"]) for a in answers]),
        "reference_length_mean": _mean([len(a[0]["response_ids"]) for a in ref_answers]),
        "policy_finished_share": _mean([float(a[0]["finished"]) for a in answers]),
        "reference_finished_share": _mean([float(a[0]["finished"]) for a in ref_answers]),
        "policy_score_mean": _mean(policy_scores),
        "reference_score_mean": _mean(reference_scores),
        "sampling": sampling.as_dict(),
        "samples": samples,
    }
