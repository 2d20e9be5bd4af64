"""What the online methods share (PPO, RLOO, GRPO), and RLOO and GRPO through TRL.

All three train a policy on the snapshot's prompts and score its responses with registered reward
model(s): they share the settings of such a run (RLConfig), the declaration (register_online) and
the set-up (start: processes and prompt sets; policy_load: the policy and its settings for this
device; the reward model specs). PPO is ours (training/recipes/ppo.py, training/rl/ppo.py).

RLOO and GRPO (TRL's RLOOTrainer, GRPOTrainer; train_online below) sample `num_generations`
responses per prompt and use the group as its own baseline (RLOO: the mean of the other samples;
GRPO: the group mean, scaled by the group's std), so neither needs a critic. The registered reward
model(s) are the reward functions; several are summed with weights.

The config dataclasses and the declarations import no torch (the web process reads them)."""
from __future__ import annotations

import dataclasses
import json
import logging
import typing
from dataclasses import dataclass
from typing import Any

from training.core.heads import MAX_WEIGHT, weights_parse
from training.recipes.base import MAX_TEMPERATURE, MAX_TOKENS, ConfigError, TrainConfig, _f, _reworded
from training.recipes.catalog import Metric, Recipe, TrainContext, register_policy
from training.recipes.common import effective_settings, lora_effective

log = logging.getLogger(__name__)

# The curves of RLOO and GRPO (register_online's default; PPO declares its own).
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


# --- what PPO, RLOO and GRPO share -----------------------------------------------------------------

@dataclass
class RLConfig(TrainConfig):
    """Settings every online method shares (PPO, RLOO, GRPO)."""

    max_length: int = _reworded(TrainConfig, "max_length", "Longest reward-model input (prompt + response, tokens); longer ones lose their start.")
    max_grad_norm: float = _f(1.0, "Gradient clipping.", minimum=0, maximum=1000)
    eval_prompts: int = _f(32, "Held-out prompts answered by the policy and the reference at the end, scored by the reward model.", minimum=0, maximum=10_000)
    sample_prompts: int = _f(4, "Held-out samples (policy beside reference) kept in the result.", minimum=0, maximum=1000)
    logging_steps: int = _reworded(TrainConfig, "logging_steps", "Steps between metric points and log lines.", default=1)
    save_steps: int = _reworded(TrainConfig, "save_steps", "Steps between checkpoints; a run resumes from the last one.", default=20)
    attribute_weights: str | None = _f(
        None, "How a multi-objective reward model's heads are combined into the reward: attribute=weight pairs, e.g. "
        "\"helpfulness=1, verbosity=-0.5\" (attributes left out weigh 0). Empty: the weights the model was saved with. "
        "A single-head reward model refuses any.", minimum=-MAX_WEIGHT, maximum=MAX_WEIGHT, weights=True)
    keep_checkpoints: int = _f(5, "Checkpoints kept as selectable policies: the newest N (one every save_steps steps) stay on disk, older ones are deleted; "
                               "each can be registered as a model or sent to raters from the run page. Replaces save_total_limit for online runs.",
                               minimum=1, maximum=100)

    # Read by the offline recipes' Trainer set-up (common.training_args_kwargs), never by ours (PPO)
    # nor by train_online's TRL arguments (trl_args): refused, so a run never claims them.
    UNUSED: typing.ClassVar[dict[str, str]] = {
        "torch_compile": "the online trainers never compile the model",
        "use_liger_kernel": "the online trainers never load Liger's kernels",
        "padding_free": "rollouts and their log-probs are computed on padded batches",
        "group_by_length": "prompts are drawn in random order, never grouped by length",
    }


def register_online(*, metrics: tuple[Metric, ...] = METRICS, **fields) -> Recipe:
    """Register an online method: a policy trained on the snapshot's prompts, scored by a reward model."""
    return register_policy(reads="prompts", needs_reward_model=True, metrics=metrics, **fields)


def config_build(cls, values: dict, *, use_lora: bool, device_type: str, bf16_supported: bool, n_params: int):
    """The run's settings with the auto fields filled for this device (as base.config_resolve does).
    Settings this version does not know (a run stored by another one) are left out."""
    known = {f.name for f in dataclasses.fields(cls)}
    cfg = cls(**{k: v for k, v in (values or {}).items() if k in known})
    if cfg.learning_rate is None:
        cfg.learning_rate = cfg.LR_DEFAULTS[0] if use_lora else cfg.LR_DEFAULTS[1]
    if cfg.bf16 is None:
        cfg.bf16 = device_type == "cuda" and bf16_supported
    if device_type == "cpu":
        cfg.bf16 = False
    if cfg.gradient_checkpointing is None:
        cfg.gradient_checkpointing = device_type == "cuda" and n_params >= 1_000_000_000
    return cfg


def no_dropout(model) -> None:
    """Dropout makes the log-probs of the rollout and of the update disagree for the same weights."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


@dataclass
class Start:
    """An online run once it has started: which process this is, its device, the prompt sets."""

    processes: Any  # training.rl.models.Processes
    device: Any  # torch.device
    bf16_ok: bool
    prompts: list  # train split
    held_out: list  # test split, for the evaluation against the reference


def start(ctx: TrainContext, config_class: type[RLConfig]) -> Start:
    """The process group (under torchrun / accelerate launch; one process otherwise), the
    snapshot's prompt sets (refused without prompts to train on) and the run's seed, which draws
    the adapters' and heads' initial weights."""
    import torch
    from transformers import set_seed

    from training.rl import models as M

    processes = M.Processes()
    device = processes.device
    prompts = M.load_prompts(ctx.snapshot_dir, "train")
    held_out = M.load_prompts(ctx.snapshot_dir, "test")
    if not prompts:
        raise ValueError(f"{ctx.snapshot_dir}/prompts/train.jsonl: the snapshot has no prompts to train on")
    ctx.progress.say(f"{len(prompts)} train and {len(held_out)} held-out prompts; device {device}")
    ctx.progress.check()
    set_seed(int(ctx.config.get("seed", config_class.seed)))
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return Start(processes=processes, device=device, bf16_ok=bf16_ok, prompts=prompts, held_out=held_out)


def policy_load(ctx: TrainContext, config_class: type[RLConfig], *, device, bf16_ok: bool):
    """The run's tokenizer and policy, and its settings for this device: (cfg, tokenizer, policy,
    dtype). LoRA freezes the base, so on a GPU with bf16 it stays in bf16; full training keeps fp32."""
    import torch

    from training.rl import models as M

    tokenizer = M.load_tokenizer(ctx.base_model_path)
    dtype = torch.bfloat16 if (ctx.use_lora and device.type == "cuda" and bf16_ok) else torch.float32
    policy = M.load_policy(ctx.base_model_path, dtype=dtype)
    cfg = config_build(config_class, ctx.config, use_lora=ctx.use_lora, device_type=device.type, bf16_supported=bf16_ok,
                       n_params=sum(p.numel() for p in policy.parameters()))
    return cfg, tokenizer, policy, dtype


def reward_model_specs(ctx: TrainContext) -> list[dict]:
    """The run's reward model(s): [{"path", "is_adapter", "base_path", "weight"?, "name"?}].
    ctx.extra["reward_models"] gives several; the run's own reward model otherwise, whose base
    (a reward model saved as an adapter) the runner passes as ctx.extra["reward_model_base_path"]."""
    specs = ctx.extra.get("reward_models") or [{"path": ctx.reward_model_path, "is_adapter": ctx.reward_model_is_adapter}]
    if not specs or specs[0].get("path") is None:
        raise ValueError(f"{ctx.method.upper()} needs a reward model: choose one for the run")
    return [{**spec, "base_path": spec.get("base_path") or (ctx.extra.get("reward_model_base_path") if i == 0 else None)}
            for i, spec in enumerate(specs)]


def attribute_weights(ctx: TrainContext) -> dict[str, float] | None:
    """The run's attribute_weights as a dict (None: the reward model's saved defaults)."""
    return weights_parse(ctx.config.get("attribute_weights"), field="attribute_weights")


def reward_model_load(spec: dict, *, dtype=None):
    """One reward model of reward_model_specs as a plain network and its tokenizer."""
    from training.rl import models as M

    return M.load_reward_model(spec["path"], is_adapter=bool(spec.get("is_adapter")), dtype=dtype, base_path=spec.get("base_path"))


# --- RLOO and GRPO through TRL -------------------------------------------------------------------------

@dataclass
class OnlineConfig(RLConfig):
    """Settings RLOO and GRPO share (TRL's names where TRL has one). The fields a method's config
    adds to these are TRL arguments of the same name (method_args)."""

    per_device_train_batch_size: int = _reworded(
        RLConfig, "per_device_train_batch_size", "Responses per device per optimizer step (a multiple of num_generations across devices)."
    )
    num_generations: int = _f(4, "Responses sampled per prompt; the group is the baseline (at least 2).", minimum=2, maximum=1024)
    max_completion_length: int = _f(128, "Longest response in tokens.", minimum=1, maximum=MAX_TOKENS)
    temperature: float = _f(1.0, "Sampling temperature (TRL divides the logits of the log-probs by it too).", minimum=0.01, maximum=MAX_TEMPERATURE)
    top_p: float = _f(1.0, "Nucleus sampling: keep the smallest set of tokens whose probability reaches this. Only 1: TRL computes "
                      "the log-probs from the whole distribution.", minimum=0, maximum=1)
    num_iterations: int = _f(1, "Updates per batch of generations (1: on-policy, no clipping needed).", minimum=1, maximum=100)
    epsilon: float = _f(0.2, "Clip range of the importance ratio when num_iterations > 1.", minimum=0, maximum=1)
    mask_truncated_completions: bool = _f(False, "Leave responses that hit max_completion_length out of the loss (they never ended).")
    reward_weights: str | None = _f(None, "Weights of the reward models, comma-separated in their order (empty: 1 each).")
    use_vllm: bool = _f(False, "Generate with vLLM (GPU only, the vllm package; colocate mode shares the training GPU). Off: transformers generation.")
    vllm_gpu_memory_utilization: float = _f(0.3, "Share of GPU memory vLLM may take in colocate mode (with use_vllm).", minimum=0, maximum=1)

    @classmethod
    def check(cls, values: dict) -> None:
        super().check(values)
        defaults = {f.name: f.default for f in dataclasses.fields(OnlineConfig)}
        if not values["use_vllm"] and values["vllm_gpu_memory_utilization"] != defaults["vllm_gpu_memory_utilization"]:
            raise ConfigError("vllm_gpu_memory_utilization: read only when use_vllm is on; turn use_vllm on or leave it at its default")
        if values["num_iterations"] == 1 and values["epsilon"] != defaults["epsilon"]:
            # One update per batch of generations: the old log-probs are the current ones, the ratio is 1
            # and the clip never acts (TRL recomputes or detaches them; we set no steps_per_generation).
            raise ConfigError(f"epsilon: with num_iterations 1 the importance ratio stays 1 and nothing is clipped; "
                              f"raise num_iterations or leave epsilon at {defaults['epsilon']}")
        # Every processor the sampler applies must shape the log-probs too. TRL 1.16 recomputes them
        # from the logits divided by the temperature and nothing else, so a nucleus would make the
        # importance ratio and the KL those of another distribution than the one sampled.
        if values.get("top_p", 1.0) < 1.0:
            raise ConfigError(f"top_p: {values['top_p']} would truncate the sampling while TRL's log-probs use the whole "
                              "distribution; only 1 is allowed")


def method_args(cfg: OnlineConfig) -> dict:
    """The method's own settings (GRPO: beta, loss_type, scale_rewards), for TRL's config."""
    shared = {f.name for f in dataclasses.fields(OnlineConfig)}
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in shared}


def trl_args(cfg: OnlineConfig, *, args_cls, output_dir, device_type: str, n_rewards: int, method_args: dict):
    from training.rl.sampling import NEUTRAL

    weights = [float(w) for w in cfg.reward_weights.split(",") if w.strip()] if cfg.reward_weights else None
    if weights is not None and len(weights) != n_rewards:
        raise ValueError(f"reward_weights: {len(weights)} weights for {n_rewards} reward model(s)")
    use_vllm = cfg.use_vllm and device_type == "cuda"
    return args_cls(
        output_dir=str(output_dir), learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size, gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, lr_scheduler_type=cfg.lr_scheduler_type, seed=cfg.seed,
        bf16=bool(cfg.bf16), fp16=False, gradient_checkpointing=bool(cfg.gradient_checkpointing), max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.save_steps,
        # The run keeps its checkpoints as policies to compare (training/runs/checkpoints.py), not just to resume from.
        save_total_limit=cfg.keep_checkpoints,
        report_to="none", disable_tqdm=True, use_cpu=device_type == "cpu", dataloader_num_workers=0,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
        top_p=cfg.top_p, top_k=0, min_p=None, repetition_penalty=1.0, num_iterations=cfg.num_iterations, epsilon=cfg.epsilon,
        mask_truncated_completions=cfg.mask_truncated_completions, reward_weights=weights,
        use_vllm=use_vllm, vllm_mode="colocate", vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        # transformers generation: every other processor explicitly off (training/rl/sampling.py).
        # vLLM builds its SamplingParams from the fields above and rejects transformers' names.
        generation_kwargs=None if use_vllm else dict(NEUTRAL),
        **method_args,
    )


def reward_functions(ctx: TrainContext, *, device, max_length: int, batch_size: int):
    """The run's reward model(s) as TRL reward functions: callables (prompts, completions) -> floats,
    and their weights when every spec gives one."""
    from training.rl import models as M

    specs = reward_model_specs(ctx)
    funcs = []
    for i, spec in enumerate(specs):
        net, tokenizer = reward_model_load(spec)
        net.requires_grad_(False).eval().to(device)
        model = M.RewardModel(net, tokenizer, batch_size=batch_size, max_length=max_length, weights=attribute_weights(ctx))
        funcs.append(_Reward(model, spec.get("name") or f"rm{i}"))
    weights = [float(spec["weight"]) for spec in specs if spec.get("weight") is not None]
    return funcs, (weights if len(weights) == len(specs) else None)


class _Reward:
    def __init__(self, model, name: str):
        self.model, self.__name__ = model, name

    def __call__(self, prompts, completions, source_prompt=None, **kwargs) -> list[float]:
        # The policy may have seen a text prompt as a user turn (training/core/chat.py); the reward model
        # scores the prompt as stored, rendered its own way, as it was trained.
        if source_prompt is not None:
            prompts = [json.loads(p) for p in source_prompt]
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


def train_online(ctx: TrainContext, recipe: Recipe, *, trainer_cls, args_cls) -> dict:
    """Load prompts, policy and reward models, train with TRL's `trainer_cls` (resuming from the
    last checkpoint), evaluate against the reference on held-out prompts, save."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint

    from training.core.chat import as_chat
    from training.rl import models as M
    from training.rl.sampling import Sampling, generation_config, model_config_replaced

    run = start(ctx, recipe.config_class)
    cfg, tokenizer, policy, _ = policy_load(ctx, recipe.config_class, device=run.device, bf16_ok=run.bf16_ok)
    no_dropout(policy)
    funcs, weights = reward_functions(ctx, device=run.device, max_length=cfg.max_length, batch_size=cfg.per_device_eval_batch_size)
    if weights is not None and not cfg.reward_weights:
        cfg.reward_weights = ",".join(str(w) for w in weights)
    peft_config = None
    if ctx.use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=M.lora_targets(policy))
    args = trl_args(cfg, args_cls=args_cls, output_dir=ctx.checkpoint_dir, device_type=run.device.type, n_rewards=len(funcs),
                    method_args=method_args(cfg))
    ctx.progress.say(f"{ctx.method}: {len(run.prompts)} prompts x {cfg.num_generations} responses, {len(funcs)} reward model(s), "
                     f"{'LoRA' if ctx.use_lora else 'full'}, lr {cfg.learning_rate:g}, generation by {'vLLM' if args.use_vllm else 'transformers'}")
    ctx.progress.check()
    trainer = trainer_cls(
        model=policy, reward_funcs=funcs, args=args,
        train_dataset=Dataset.from_list([{"prompt": as_chat(tokenizer, p), "source_prompt": json.dumps(p)} for p in run.prompts]),
        processing_class=tokenizer, peft_config=peft_config,
        callbacks=[_callback(ctx.progress, report=not ctx.callbacks), *ctx.callbacks],
    )
    effective = effective_settings({
        **{k: bool(getattr(args, k, False)) for k in ("bf16", "gradient_checkpointing", "use_liger_kernel", "torch_compile", "padding_free")},
        "group_by_length": False, "learning_rate": args.learning_rate, "use_vllm": bool(args.use_vllm), **lora_effective(trainer.model),
    })
    ctx.progress.say("trainer uses " + ", ".join(f"{k} {v}" for k, v in effective.items()))
    resume = get_last_checkpoint(str(ctx.checkpoint_dir)) if ctx.checkpoint_dir.is_dir() else None
    if resume:
        ctx.progress.say(f"resuming from {resume}")
    # TRL hands generate() a GenerationConfig whose unset fields transformers fills from the model's
    # own (min_p, suppress_tokens, forced_eos_token_id...): while training, the model carries ours.
    # Built after the trainer, which reads the model's eos ids (end-of-turn tokens) and pad first.
    own = generation_config(Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_completion_length),
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=trainer.eos_token_ids)
    with model_config_replaced(trainer.model, own):
        output = trainer.train(resume_from_checkpoint=resume)
    ctx.progress.check()

    # Saved before evaluating: an evaluation that fails must not cost the trained policy.
    if run.processes.is_main:
        trainer.save_model(str(ctx.out_dir))
        tokenizer.save_pretrained(str(ctx.out_dir))
        ctx.progress.say(f"saved the {'adapter' if ctx.use_lora else 'policy'} to {ctx.out_dir}")
    test, samples = evaluated(ctx.progress, lambda: evaluate(
        trainer.model, tokenizer, funcs, run.held_out[: cfg.eval_prompts] if run.processes.is_main else [], cfg=cfg,
        device=run.device, base_model_path=ctx.base_model_path))
    ctx.progress.check()
    run.processes.barrier()
    return {"global_step": trainer.state.global_step, "train_loss": output.training_loss,
            "resumed_from_step": int(str(resume).rsplit("-", 1)[-1]) if resume else None,
            "test": test, "samples": samples, "resolved_config": dataclasses.asdict(cfg), "effective": effective}


def evaluated(progress, evaluation) -> tuple[dict, list]:
    """(figures, samples) of `evaluation()`, or the error in the figures: the policy is saved by
    then, and a run that trained must not be marked failed for its evaluation."""
    try:
        return evaluation()
    except Exception as exc:
        log.exception("evaluation failed")
        progress.say(f"evaluation failed: {type(exc).__name__}: {exc}")
        return {"error": f"evaluation failed: {type(exc).__name__}: {exc}"[:2000]}, []


def evaluate(model, tokenizer, funcs, prompts, *, cfg, device, base_model_path) -> tuple[dict, list]:
    """The policy against its reference on held-out prompts (training/rl/comparison.py, as an
    evaluation job), scored by the weighted sum of the reward functions. LoRA: the reference is the
    adapter switched off; full training kept no reference, so the base model is loaded for the
    comparison. Returns the figures and the first cfg.sample_prompts pairs side by side."""
    from training.rl.comparison import compare
    from training.rl.models import load_policy
    from training.rl.sampling import Sampling

    if not prompts:  # eval_prompts 0, or a process other than the main one: nothing to compare
        return {}, []
    weights = [float(w) for w in cfg.reward_weights.split(",") if w.strip()] if cfg.reward_weights else [1.0] * len(funcs)

    def reward(batch_prompts, texts):
        per_func = [f(batch_prompts, texts) for f in funcs]
        return [sum(w * s for w, s in zip(weights, vals)) for vals in zip(*per_func)]

    reference = None
    if not hasattr(model, "disable_adapter"):
        reference = load_policy(base_model_path, dtype=next(model.parameters()).dtype).to(device).eval()
    figures = compare(policy=model, reference=reference, tokenizer=tokenizer, reward=reward, prompts=prompts,
                      sampling=Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_completion_length),
                      batch_size=cfg.per_device_eval_batch_size, samples_kept=cfg.sample_prompts)
    return figures, figures.pop("samples")
