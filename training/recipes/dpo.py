"""DPO recipe: TRL's DPOTrainer on the snapshot's preference pairs (text or conversational).
With LoRA the reference is the same model with the adapter switched off (TRL does this when no
ref_model is given), so no second copy of the weights sits in memory."""
from __future__ import annotations

from pathlib import Path

from training.recipes.base import DPOConfig
from training.recipes.common import render_prompt, trainer_make
from training.recipes.common import save as save  # the runner calls recipe.save; nothing DPO-specific to it

ARTIFACT_KIND = "policy"
Config = DPOConfig


def model_load(*, path: Path | str, dtype=None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, dtype=dtype, attn_implementation="sdpa")


def trainer_build(*, cfg: DPOConfig, model, tokenizer, train_ds, use_lora: bool, output_dir, device_type: str, callbacks=()):
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    if "margin" in train_ds.column_names:
        train_ds = train_ds.remove_columns("margin")
    return trainer_make(
        trainer_cls=DPOTrainer,
        args_cls=TRLDPOConfig,
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        train_ds=train_ds,
        use_lora=use_lora,
        output_dir=output_dir,
        device_type=device_type,
        callbacks=callbacks,
        method_args={
            "beta": cfg.beta,
            "loss_type": [cfg.loss_type],
            "label_smoothing": cfg.label_smoothing,
            "precompute_ref_log_probs": cfg.precompute_ref_log_probs,
        },
        lora_task_type="CAUSAL_LM",
        length_columns=("prompt_ids+chosen_ids", "prompt_ids+rejected_ids"),
        ref_model=None,  # with LoRA, TRL uses the model with its adapter switched off as the reference
    )


def evaluate(*, trainer, cfg: DPOConfig, test_ds) -> dict:
    """Implicit-reward accuracy and margins on the test split (β·log π/π_ref of chosen vs rejected)."""
    if test_ds is None or len(test_ds) == 0:
        return {"test_pairs": 0, "note": "the snapshot has no test split"}
    if "margin" in test_ds.column_names:
        test_ds = test_ds.remove_columns("margin")
    # Length grouping is for training batches; Trainer would apply it to the eval sampler too,
    # and the test split has no length column.
    trainer.args.train_sampling_strategy = "sequential"
    metrics = trainer.evaluate(eval_dataset=test_ds, metric_key_prefix="test")
    pick = {
        "accuracy": "test_rewards/accuracies",
        "margin_mean": "test_rewards/margins",
        "reward_chosen_mean": "test_rewards/chosen",
        "reward_rejected_mean": "test_rewards/rejected",
        "loss": "test_loss",
        "logps_chosen_mean": "test_logps/chosen",
        "logps_rejected_mean": "test_logps/rejected",
    }
    out = {"test_pairs": len(test_ds)}
    for key, src in pick.items():
        # TRL's own log() renames evaluation metrics to eval_*, whatever the prefix asked for.
        value = metrics.get(src, metrics.get(src.replace("test_", "eval_", 1)))
        if value is not None:
            out[key] = value
    return out


def _generate(model, tokenizer, prompts, *, max_new_tokens: int) -> list[str]:
    import torch

    device = next(model.parameters()).device
    model.eval()
    texts = []
    for prompt in prompts:
        enc = tokenizer(render_prompt(tokenizer, prompt), return_tensors="pt").to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return texts


def samples(*, trainer, cfg: DPOConfig, test_ds, base_path: Path) -> list[dict]:
    """Greedy answers of the trained policy beside its reference on held-out prompts."""
    if test_ds is None or not cfg.sample_prompts:
        return []
    from peft import PeftModel

    rows, seen = [], set()
    for ex in test_ds:
        key = repr(ex["prompt"])
        if key not in seen:
            seen.add(key)
            rows.append(ex)
        if len(rows) >= cfg.sample_prompts:
            break
    prompts = [r["prompt"] for r in rows]
    model, tokenizer = trainer.model, trainer.processing_class
    policy = _generate(model, tokenizer, prompts, max_new_tokens=cfg.sample_max_new_tokens)
    if isinstance(model, PeftModel):
        with model.disable_adapter():
            reference = _generate(model, tokenizer, prompts, max_new_tokens=cfg.sample_max_new_tokens)
    else:
        ref = trainer.ref_model or model_load(path=base_path, dtype=model.dtype).to(next(model.parameters()).device)
        reference = _generate(ref, tokenizer, prompts, max_new_tokens=cfg.sample_max_new_tokens)
    return [
        {"prompt": r["prompt"], "policy": p, "reference": q, "chosen": r["chosen"], "rejected": r["rejected"]}
        for r, p, q in zip(rows, policy, reference)
    ]
