"""Sampling uses the run's settings alone (training/rl/sampling.py), and the evaluation KL says what
it measures (training/rl/comparison.py).

The policy here ships a generation_config.json full of defaults a real checkpoint may carry
(repetition_penalty=5, min_p, typical_p, no_repeat_ngram_size, top_k, a suppressed token, its own
temperature and top_p). None of them may shape a sample: the log-probs recomputed for a sample know
only the temperature and top_p, so every other processor would make them those of another
distribution. What generate() actually applies is read from transformers itself
(_get_logits_processor)."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from tests.training import tiny_rl
from training.rl.sampling import Sampling, generate, response_logprobs

# Every test but the page's is marked dbless: the database plays no part (CI runs them on SQLite only).

LEAKY = dict(do_sample=True, temperature=0.3, top_p=0.5, top_k=3, min_p=0.2, typical_p=0.5, repetition_penalty=5.0,
             no_repeat_ngram_size=1)


def leaky_policy(folder, tok, *, seed: int = 0):
    """A tiny policy whose saved generation_config would change every sample if it were used."""
    from transformers import GenerationConfig

    tiny_rl.save_policy(folder, tok, seed=seed)
    GenerationConfig(**LEAKY, suppress_tokens=[tok.convert_tokens_to_ids(tiny_rl.MARKED)], pad_token_id=tok.pad_token_id,
                     eos_token_id=tok.eos_token_id).save_pretrained(folder)
    return folder


@pytest.fixture
def tok():
    return tiny_rl.tokenizer()


@pytest.fixture
def policy(tmp_path, tok):
    from training.rl.models import load_policy

    net = load_policy(leaky_policy(tmp_path / "policy", tok)).eval()
    assert net.generation_config.repetition_penalty == 5.0  # the file was read: the test means something
    return net


@pytest.fixture
def processors(monkeypatch):
    """[(the GenerationConfig generate() ended with, [names of the logits processors it applied])]
    for every generate() call, whoever makes it (our code or TRL's)."""
    from transformers.generation.utils import GenerationMixin

    calls = []
    original = GenerationMixin._get_logits_processor

    def spy(self, generation_config, *args, **kwargs):
        applied = original(self, generation_config, *args, **kwargs)
        calls.append((generation_config, [type(p).__name__ for p in applied]))
        return applied

    monkeypatch.setattr(GenerationMixin, "_get_logits_processor", spy)
    return calls


def _plain_logprobs(net, prompt_ids, response_ids, *, temperature: float, top_p: float = 1.0):
    """Per-token log-probs of one answer, unpadded and by hand: logits / T, then (top_p < 1) the
    smallest set of most likely tokens whose mass reaches top_p, renormalised."""
    import torch

    ids = torch.tensor([list(prompt_ids) + list(response_ids)])
    with torch.no_grad():
        logits = net(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    out = []
    for row, token in zip(logits, response_ids):
        probs = row.softmax(-1)
        if top_p < 1:
            order = probs.argsort(descending=True)
            above = probs[order].cumsum(0) - probs[order]  # mass of the tokens ranked above each one
            kept = torch.zeros_like(probs, dtype=torch.bool)
            kept[order[above < top_p]] = True
            probs = torch.where(kept, probs, torch.zeros_like(probs))
            probs = probs / probs.sum()
        p = float(probs[token])
        out.append(math.log(p) if p > 0 else float("-inf"))
    return out


# --- 1. one explicit GenerationConfig ----------------------------------------------------------------------

@pytest.mark.dbless
def test_it_applies_only_the_runs_temperature_and_top_p_whatever_the_model_ships(policy, tok, processors):
    generate(net=policy, tokenizer=tok, prompts=tiny_rl.HELD_OUT[:3], n=2, sampling=Sampling(temperature=0.7, top_p=0.9, max_new_tokens=6))
    assert processors and all(names == ["TemperatureLogitsWarper", "TopPLogitsWarper"] for _, names in processors), [n for _, n in processors]
    used = processors[0][0]
    assert (used.temperature, used.top_p, used.top_k, used.min_p, used.typical_p) == (0.7, 0.9, 0, None, 1.0)
    assert (used.repetition_penalty, used.no_repeat_ngram_size, used.suppress_tokens) == (1.0, 0, None)

    processors.clear()
    generate(net=policy, tokenizer=tok, prompts=tiny_rl.HELD_OUT[:1], sampling=Sampling(temperature=0, max_new_tokens=6))
    assert [names for _, names in processors] == [[]]  # greedy: no penalty, no suppressed token, nothing
    # The checkpoint keeps what it shipped with (a policy saved after sampling must not lose it).
    assert (policy.generation_config.repetition_penalty, policy.generation_config.top_k) == (5.0, 3)


@pytest.mark.dbless
def test_it_samples_exactly_what_a_model_without_generation_defaults_samples(policy, tok, tmp_path):
    from transformers import GenerationConfig

    from training.rl.models import load_policy

    plain = load_policy(tmp_path / "policy").eval()
    plain.generation_config = GenerationConfig()
    sampling = Sampling(temperature=1.0, max_new_tokens=8, seed=3)
    mine = generate(net=policy, tokenizer=tok, prompts=tiny_rl.HELD_OUT, n=3, sampling=sampling)
    theirs = generate(net=plain, tokenizer=tok, prompts=tiny_rl.HELD_OUT, n=3, sampling=sampling)
    assert [[a["response_ids"] for a in row] for row in mine] == [[a["response_ids"] for a in row] for row in theirs]
    # no_repeat_ngram_size=1 from the file would forbid any repeated token; unprocessed sampling repeats some.
    assert any(len(set(a["response_ids"])) < len(a["response_ids"]) for row in mine for a in row)


@pytest.mark.dbless
def test_it_draws_ppo_rollouts_at_the_run_temperature_alone_and_recomputes_their_log_probs_unpadded(tmp_path, tok, processors):
    import torch

    from training.recipes import ppo
    from training.rl.ppo import PPOTrainer

    config = dict(per_device_train_batch_size=8, num_mini_batches=1, max_new_tokens=6, temperature=0.8, seed=0)
    paths = dict(policy=leaky_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
                 snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "snapshot", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
    ctx = tiny_rl.context(tmp_path, method="ppo", config=config, use_lora=False, progress=tiny_rl.FakeProgress(), **paths)
    cfg, pieces, _ = ppo.build(ctx, device=torch.device("cpu"), bf16_ok=False)
    trainer = PPOTrainer(cfg=cfg, prompts=tiny_rl.PROMPTS, progress=ctx.progress, checkpoint_dir=ctx.checkpoint_dir, **pieces)
    torch.manual_seed(0)
    batch = trainer.rollout(tiny_rl.PROMPTS[:8])

    assert processors and all(names == ["TemperatureLogitsWarper"] for _, names in processors), [n for _, n in processors]
    # The log-probs below are recomputed whatever drew the tokens: what shows a leak is the tokens.
    # The same seed on a model that ships no generation defaults draws the very same responses.
    from transformers import GenerationConfig

    shipped, pieces["policy"].generation_config = pieces["policy"].generation_config, GenerationConfig()
    torch.manual_seed(0)
    assert torch.equal(trainer.rollout(tiny_rl.PROMPTS[:8]).input_ids, batch.input_ids)
    pieces["policy"].generation_config = shipped
    P, policy = batch.prompt_length, pieces["policy"]
    for row in range(8):
        prompt = batch.input_ids[row, :P][batch.attention_mask[row, :P].bool()].tolist()
        response = batch.input_ids[row, P:][batch.response_mask[row]].tolist()
        expected = _plain_logprobs(policy, prompt, response, temperature=0.8)
        assert batch.logprobs[row, : len(response)].tolist() == pytest.approx(expected, abs=1e-5)


# --- 2. the evaluation KL with top_p ----------------------------------------------------------------------

@pytest.mark.dbless
def test_it_renormalises_the_log_probs_over_the_nucleus_the_sampler_keeps(policy, tok):
    import torch

    sampling = Sampling(temperature=0.7, top_p=0.6, max_new_tokens=1)
    drawn = generate(net=policy, tokenizer=tok, prompts=[tiny_rl.HELD_OUT[1]], n=64, sampling=sampling)[0]
    prompt_ids = drawn[0]["prompt_ids"]  # as the sampler saw it; a spread-out next token: three in the nucleus
    every_token = [{"prompt_ids": prompt_ids, "response_ids": [t]} for t in range(len(tok))]
    whole = torch.tensor(response_logprobs(net=policy, answers=every_token, temperature=0.7, batch_size=256))
    assert float(whole.exp().sum()) == pytest.approx(1.0, abs=1e-5)

    nucleus = torch.tensor(response_logprobs(net=policy, answers=every_token, temperature=0.7, top_p=0.6, batch_size=256))
    by_hand = torch.tensor([_plain_logprobs(policy, prompt_ids, [t], temperature=0.7, top_p=0.6)[0] for t in range(len(tok))])
    kept = torch.isfinite(by_hand)
    assert 1 < int(kept.sum()) < len(tok) // 2  # a real truncation
    assert float(nucleus[kept].exp().sum()) == pytest.approx(1.0, abs=1e-5)
    assert nucleus[kept].tolist() == pytest.approx(by_hand[kept].tolist(), abs=1e-5)
    assert all(nucleus[kept] > whole[kept])  # renormalised: each kept token gains what the tail lost

    # The sampler drew from that nucleus, and from more than one of its tokens.
    assert 1 < len({a["response_ids"][0] for a in drawn}) and {a["response_ids"][0] for a in drawn} <= set(torch.nonzero(kept)[:, 0].tolist())


@pytest.mark.dbless
@pytest.mark.parametrize("top_p", [1.0, 0.8])
def test_it_reports_the_k1_mean_of_the_distribution_it_sampled_and_says_which(tmp_path, tok, top_p):
    from training.rl import models as M
    from training.rl.comparison import compare

    policy = M.load_policy(leaky_policy(tmp_path / "p", tok, seed=1)).eval()
    reference = M.load_policy(leaky_policy(tmp_path / "r", tok, seed=2)).eval()
    sampling = Sampling(temperature=0.9, top_p=top_p, max_new_tokens=5, seed=4)
    result = compare(policy=policy, reference=reference, tokenizer=tok, reward=M.RewardModel(tiny_rl.token_reward_model(tok).eval(), tok),
                     prompts=tiny_rl.HELD_OUT, sampling=sampling, batch_size=4)

    answers = [a[0] for a in generate(net=policy, tokenizer=tok, prompts=tiny_rl.HELD_OUT, sampling=sampling, batch_size=4)]
    k1 = [sum(_plain_logprobs(policy, a["prompt_ids"], a["response_ids"], temperature=0.9, top_p=top_p))
          - sum(_plain_logprobs(reference, a["prompt_ids"], a["response_ids"], temperature=0.9)) for a in answers]
    assert result["kl_mean"] == pytest.approx(sum(k1) / len(k1), abs=1e-4)
    label = result["kl_estimator"]
    assert "T=0.9" in label and "reference at T=0.9, untruncated" in label
    assert ("top_p=0.8 nucleus and renormalised" in label) == (top_p < 1)


@pytest.mark.dbless
def test_it_refuses_a_nucleus_for_grpo_and_rloo_whose_log_probs_ignore_it():
    from training.recipes.base import ConfigError, config_validate

    for method in ("grpo", "rloo"):
        with pytest.raises(ConfigError, match=r"^top_p: .*TRL's log-probs use the whole distribution"):
            config_validate(method, {"top_p": 0.9})
        assert config_validate(method, {"top_p": 1})["top_p"] == 1


@pytest.mark.dbless
@pytest.mark.slow
def test_it_keeps_the_models_generation_config_out_of_grpo_sampling(tmp_path, tok, processors):
    import torch

    from training.recipes.catalog import get

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        paths = dict(policy=leaky_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
                     snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "snapshot", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
        config = dict(per_device_train_batch_size=8, num_generations=4, max_completion_length=6, temperature=0.8, max_steps=1,
                      eval_prompts=2, learning_rate=1e-3, logging_steps=1)
        result = get("grpo").train_fn()(tiny_rl.context(tmp_path, method="grpo", config=config, use_lora=True,
                                                        progress=tiny_rl.FakeProgress(), **paths))
    finally:
        torch.set_num_threads(threads)
    assert result["global_step"] == 1 and "error" not in result["test"]
    # TRL's generation (training) and ours (the evaluation at the end): temperature, and nothing from the file.
    assert len(processors) >= 2 and all(names == ["TemperatureLogitsWarper"] for _, names in processors), [n for _, n in processors]
    assert {(c.repetition_penalty, c.top_k, c.min_p, c.typical_p, c.no_repeat_ngram_size) for c, _ in processors} == {(1.0, 0, None, 1.0, 0)}


@pytest.mark.django_db
def test_it_says_on_the_evaluation_page_which_distributions_the_kl_compares(project, owner, client_for):
    from training.loop.models import Job
    from training.models import ModelArtifact
    from training.rl.comparison import kl_measured

    policy = ModelArtifact.objects.create(name="tiny-policy", kind=ModelArtifact.Kind.POLICY, source=ModelArtifact.Source.TRAINED, path="p")
    result = {"n": 2, "wins": 1, "ties": 1, "losses": 0, "win_rate": 0.75, "ci_low": 0.3, "ci_high": 0.95, "kl_mean": 0.12,
              "kl_estimator": kl_measured(Sampling(temperature=0.9, top_p=0.8)), "policy": "tiny-policy", "reference": "tiny-base",
              "reward_model": "tiny-rm", "samples": []}
    job = Job.objects.create(kind=Job.Kind.EVALUATION, policy=policy, project=project, status=Job.Status.SUCCEEDED, result=result)
    html = client_for(owner).get(f"/training/jobs/{job.pk}/").content.decode()
    assert "the policy at T=0.9 truncated to its top_p=0.8 nucleus and renormalised" in html
    assert "the reference at T=0.9, untruncated" in html
