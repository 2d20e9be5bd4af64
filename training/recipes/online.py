"""RLOO and GRPO through TRL (RLOOTrainer, GRPOTrainer): what the two share.

Both sample `num_generations` responses per prompt and use the group as its own baseline (RLOO:
the mean of the other samples; GRPO: the group mean, scaled by the group's std), so neither needs
a critic. The registered reward model(s) are the reward functions; several are summed with
weights. The config dataclasses import no torch (the web process reads them)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from training.recipes.base import TrainConfig, _f
from training.recipes.registry import Metric, TrainContext

METRICS = (
    Metric("score", "Reward-model score (weighted sum)", higher_is_better=True),
    Metric("kl", "KL to reference", higher_is_better=False),
    Metric("entropy", "Entropy per token"),
    Metric("loss", "Loss"),
    Metric("clipfrac", "Clip fraction"),
    Metric("response_length", "Response length (tokens)"),
    Metric("reward_std", "Reward std within groups"),
)

# TRL's log keys -> the keys our charts read (the same names PPO reports).
LOG_KEYS = {
    "reward": "score",
    "kl": "kl",
    "entropy": "entropy",
    "completions/mean_length": "response_length",
    "clip_ratio/region_mean": "clipfrac",
    "reward_std": "reward_std",
}


@dataclass
class OnlineConfig(TrainConfig):
    """Settings RLOO and GRPO share (TRL's names where TRL has one)."""

    per_device_train_batch_size: int = _f(8, "Responses per device per optimizer step (a multiple of num_generations across devices).", minimum=1)
    max_length: int = _f(1024, "Longest reward-model input (prompt + response, tokens).", minimum=8)
    num_generations: int = _f(4, "Responses sampled per prompt; the group is the baseline (at least 2).", minimum=2)
    max_completion_length: int = _f(128, "Longest response in tokens.", minimum=1)
    temperature: float = _f(1.0, "Sampling temperature (TRL divides the logits of the log-probs by it too).", minimum=0.01)
    top_p: float = _f(1.0, "Nucleus sampling: keep the smallest set of tokens whose probability reaches this.", minimum=0)
    num_iterations: int = _f(1, "Updates per batch of generations (1: on-policy, no clipping needed).", minimum=1)
    epsilon: float = _f(0.2, "Clip range of the importance ratio when num_iterations > 1.", minimum=0)
    mask_truncated_completions: bool = _f(False, "Leave responses that hit max_completion_length out of the loss (they never ended).")
    reward_weights: str | None = _f(None, "Weights of the reward models, comma-separated in their order (empty: 1 each).")
    use_vllm: bool = _f(False, "Generate with vLLM (GPU only, the vllm package; colocate mode shares the training GPU). Off: transformers generation.")
    vllm_gpu_memory_utilization: float = _f(0.3, "Share of GPU memory vLLM may take in colocate mode.", minimum=0)
    max_grad_norm: float = _f(1.0, "Gradient clipping.", minimum=0)
    eval_prompts: int = _f(32, "Held-out prompts answered by the policy and the reference at the end, scored by the reward model.", minimum=0)
    sample_prompts: int = _f(4, "Held-out samples (policy beside reference) kept in the result.", minimum=0)
    logging_steps: int = _f(1, "Steps between metric points and log lines.", minimum=1)
    save_steps: int = _f(20, "Steps between checkpoints; a run resumes from the last one.", minimum=1)


def trl_args(cfg: OnlineConfig, *, args_cls, output_dir, device_type: str, n_rewards: int, method_args: dict):
    weights = [float(w) for w in cfg.reward_weights.split(",") if w.strip()] if cfg.reward_weights else None
    if weights is not None and len(weights) != n_rewards:
        raise ValueError(f"reward_weights: {len(weights)} weights for {n_rewards} reward model(s)")
    return args_cls(
        output_dir=str(output_dir), learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, lr_scheduler_type=cfg.lr_scheduler_type, seed=cfg.seed,
        bf16=bool(cfg.bf16), fp16=False, gradient_checkpointing=bool(cfg.gradient_checkpointing), max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        report_to="none", disable_tqdm=True, use_cpu=device_type == "cpu", dataloader_num_workers=0,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
        top_p=cfg.top_p, top_k=0, num_iterations=cfg.num_iterations, epsilon=cfg.epsilon,
        mask_truncated_completions=cfg.mask_truncated_completions, reward_weights=weights,
        use_vllm=cfg.use_vllm and device_type == "cuda", vllm_mode="colocate", vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        **method_args,
    )


def reward_functions(ctx: TrainContext, *, device, max_length: int, batch_size: int):
    """The run's reward model(s) as TRL reward functions: callables (prompts, completions) -> floats.
    ctx.extra["reward_models"] = [{"path", "is_adapter", "base_path"?, "weight"?, "name"?}] gives several."""
    from training.rl import models as M

    specs = ctx.extra.get("reward_models") or [{"path": ctx.reward_model_path, "is_adapter": ctx.reward_model_is_adapter}]
    if not specs or specs[0].get("path") is None:
        raise ValueError("this method needs a reward model: choose one for the run")
    funcs = []
    for i, spec in enumerate(specs):
        base = spec.get("base_path") or (ctx.extra.get("reward_model_base_path") if i == 0 else None)
        net, tokenizer = M.load_reward_model(spec["path"], is_adapter=bool(spec.get("is_adapter")), base_path=base)
        net.requires_grad_(False).eval().to(device)
        funcs.append(_Reward(M.RewardModel(net, tokenizer, batch_size=batch_size, max_length=max_length), spec.get("name") or f"rm{i}"))
    weights = [float(spec["weight"]) for spec in specs if spec.get("weight") is not None]
    return funcs, (weights if len(weights) == len(specs) else None)


class _Reward:
    def __init__(self, model, name: str):
        self.model, self.__name__ = model, name

    def __call__(self, prompts, completions, **kwargs) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return self.model(list(prompts), texts).cpu().tolist()


def _callback(progress, *, report: bool):
    from transformers import TrainerCallback

    class OnlineCallback(TrainerCallback):
        """TRL's log keys under the names our charts read (in place, so the run's own callbacks
        see them); the point reported here only when the run gave no callbacks of its own."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            for src, dst in LOG_KEYS.items():
                if src in logs and logs[src] is not None:
                    logs[dst] = float(logs[src])
            if report and "score" in logs:
                point = {"step": state.global_step, **{k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}}
                progress.metrics(point)
                progress.say(f"step {state.global_step}/{state.max_steps} score={logs['score']:.4g} kl={logs.get('kl', 0):.4g}")

        def on_step_end(self, args, state, control, **kwargs):
            progress.steps(step=state.global_step, total=state.max_steps)
            if _any_process(progress.should_stop()):
                control.should_training_stop = True
                control.should_save = False
            return control

    return OnlineCallback()


def _any_process(flag: bool) -> bool:
    """A stop on one process of a multi-process run stops them all at the same step."""
    import torch

    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return bool(flag)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def train_online(ctx: TrainContext, *, config_class, trainer_cls, args_cls, method_args) -> dict:
    """Load prompts, policy and reward models, train with TRL (resuming from the last checkpoint),
    evaluate against the reference on held-out prompts, save."""
    import torch
    from datasets import Dataset
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from training.recipes.ppo import config_build, no_dropout
    from training.rl import models as M

    state = M.Processes()
    device = state.device
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    prompts = M.load_prompts(ctx.snapshot_dir, "train")
    held_out = M.load_prompts(ctx.snapshot_dir, "test")
    if not prompts:
        raise ValueError(f"{ctx.snapshot_dir}/prompts/train.jsonl: the snapshot has no prompts to train on")
    set_seed(int(ctx.config.get("seed", config_class.seed)))
    tokenizer = M.load_tokenizer(ctx.base_model_path)
    dtype = torch.bfloat16 if (ctx.use_lora and bf16_ok) else torch.float32
    policy = M.load_policy(ctx.base_model_path, dtype=dtype)
    no_dropout(policy)
    cfg = config_build(config_class, ctx.config, use_lora=ctx.use_lora, device_type=device.type, bf16_supported=bf16_ok,
                       n_params=sum(p.numel() for p in policy.parameters()))
    funcs, weights = reward_functions(ctx, device=device, max_length=cfg.max_length, batch_size=cfg.per_device_eval_batch_size)
    if weights is not None and not cfg.reward_weights:
        cfg.reward_weights = ",".join(str(w) for w in weights)
    peft_config = None
    if ctx.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=M.lora_targets(policy))
    args = trl_args(cfg, args_cls=args_cls, output_dir=ctx.checkpoint_dir, device_type=device.type, n_rewards=len(funcs), method_args=method_args(cfg))
    ctx.progress.say(f"{ctx.method}: {len(prompts)} prompts x {cfg.num_generations} responses, {len(funcs)} reward model(s), "
                     f"{'LoRA' if ctx.use_lora else 'full'}, lr {cfg.learning_rate:g}, generation by {'vLLM' if args.use_vllm else 'transformers'}")
    ctx.progress.check()
    trainer = trainer_cls(
        model=policy, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer, peft_config=peft_config,
        callbacks=[_callback(ctx.progress, report=not ctx.callbacks), *ctx.callbacks],
    )
    resume = get_last_checkpoint(str(ctx.checkpoint_dir)) if ctx.checkpoint_dir.is_dir() else None
    if resume:
        ctx.progress.say(f"resuming from {resume}")
    output = trainer.train(resume_from_checkpoint=resume)
    ctx.progress.check()

    test, samples = evaluate(trainer.model, tokenizer, funcs, held_out[: cfg.eval_prompts] if state.is_main else [], cfg=cfg, device=device,
                             base_model_path=ctx.base_model_path)
    ctx.progress.check()
    if state.is_main:
        trainer.save_model(str(ctx.out_dir))
        tokenizer.save_pretrained(str(ctx.out_dir))
        ctx.progress.say(f"saved the {'adapter' if ctx.use_lora else 'policy'} to {ctx.out_dir}")
    state.barrier()
    return {"global_step": trainer.state.global_step, "train_loss": output.training_loss,
            "resumed_from_step": int(str(resume).rsplit("-", 1)[-1]) if resume else None,
            "test": test, "samples": samples, "resolved_config": dataclasses.asdict(cfg)}


def evaluate(model, tokenizer, funcs, prompts, *, cfg, device, base_model_path) -> tuple[dict, list]:
    """The policy against its reference on held-out prompts (training/rl/evaluation.py, as an
    evaluation job), scored by the weighted sum of the reward functions. LoRA: the reference is the
    adapter switched off; full training kept no reference, so the base model is loaded for the
    comparison. Returns the figures and the first cfg.sample_prompts pairs side by side."""
    from training.rl.evaluation import compare
    from training.rl.models import load_policy
    from training.sampling import Sampling

    weights = [float(w) for w in cfg.reward_weights.split(",") if w.strip()] if cfg.reward_weights else [1.0] * len(funcs)

    def reward(batch_prompts, texts):
        per_func = [f(batch_prompts, texts) for f in funcs]
        return [sum(w * s for w, s in zip(weights, vals)) for vals in zip(*per_func)]

    reference = None
    if prompts and not hasattr(model, "disable_adapter"):
        reference = load_policy(base_model_path, dtype=next(model.parameters()).dtype).to(device).eval()
    figures = compare(policy=model, reference=reference, tokenizer=tokenizer, reward=reward, prompts=prompts,
                      sampling=Sampling(temperature=cfg.temperature, max_new_tokens=cfg.max_completion_length),
                      batch_size=cfg.per_device_eval_batch_size, samples_kept=cfg.sample_prompts)
    return figures, figures.pop("samples")
