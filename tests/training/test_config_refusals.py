"""A run is refused before it is queued when a setting would be ignored by its trainer or cannot
work with the rest (issue 19 item 3, issue 21 item 6), in the form and the API, with a message that
names the setting and the fix; what the trainer really used is recorded and shown on the run page."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.models import ModelArtifact, TrainingRun
from training.recipes.base import ConfigError, config_resolve, config_validate
from training.recipes.kto import class_weights, weight_ratio

# (method, settings, the message it must give): each is a setting the trainer would drop or reject late.
REFUSED = [
    # TRL 1.16 reads label_smoothing only in the robust, exo_pair, aot and aot_unpaired losses.
    ("dpo", {"loss_type": "sigmoid", "label_smoothing": 0.1}, "label_smoothing: the sigmoid loss ignores it"),
    ("dpo", {"loss_type": "hinge", "label_smoothing": 0.1}, "label_smoothing: the hinge loss ignores it"),
    ("dpo", {"loss_type": "ipo", "label_smoothing": 0.2}, "label_smoothing: the ipo loss ignores it"),
    # TRL raises this only when it builds the trainer, on the worker.
    ("dpo", {"loss_type": "exo_pair"}, "label_smoothing: the exo_pair loss needs a value above 0"),
    # TRL 1.16's DPOTrainer turns padding_free off with a warning.
    ("dpo", {"padding_free": True}, "padding_free: dpo does not use it"),
    ("reward", {"padding_free": "true"}, "padding_free: reward does not use it"),
    ("kto", {"group_by_length": True}, "group_by_length: kto does not use it"),
    ("kto", {"padding_free": True}, "padding_free: kto does not use it"),
    *[(method, {name: True}, f"{name}: {method} does not use it")
      for method in ("ppo", "rloo", "grpo") for name in ("torch_compile", "use_liger_kernel", "padding_free", "group_by_length")],
    ("ppo", {"lora_dropout": 0.05}, "lora_dropout: PPO turns every dropout off"),
    ("ppo", {"per_device_train_batch_size": 16, "num_mini_batches": 3}, "num_mini_batches: 3 does not divide per_device_train_batch_size"),
    ("grpo", {"vllm_gpu_memory_utilization": 0.5}, "vllm_gpu_memory_utilization: read only when use_vllm is on"),
    ("rloo", {"vllm_gpu_memory_utilization": 0.9}, "vllm_gpu_memory_utilization: read only when use_vllm is on"),
    ("sft", {"packing": True, "padding_free": False}, "padding_free: packing always runs padding-free"),
    ("grpo", {"epsilon": 0.1}, "epsilon: with num_iterations 1 the importance ratio stays 1"),
    ("rloo", {"epsilon": 0.3, "num_iterations": 1}, "epsilon: with num_iterations 1"),
    ("ppo", {"kl_target": 3.0}, "kl_target: read only when adaptive_kl is on"),
    ("ppo", {"kl_horizon": 500}, "kl_horizon: read only when adaptive_kl is on"),
    ("ppo", {"normalize_reward": False, "reward_norm_samples": 128}, "reward_norm_samples: read only when normalize_reward is on"),
]


@pytest.mark.dbless
@pytest.mark.parametrize(("method", "config", "message"), REFUSED, ids=[f"{m}-{'-'.join(c)}" for m, c, _ in REFUSED])
def test_it_refuses_a_setting_the_trainer_would_ignore_naming_it(method, config, message):
    with pytest.raises(ConfigError, match=message):
        config_validate(method, config)


@pytest.mark.dbless
@pytest.mark.parametrize(("method", "config"), [
    ("dpo", {"loss_type": "robust", "label_smoothing": 0.1}),
    ("dpo", {"loss_type": "exo_pair", "label_smoothing": 0.001}),
    ("dpo", {"loss_type": "aot", "label_smoothing": 0.2}),
    ("dpo", {"loss_type": "sigmoid", "label_smoothing": 0}),
    ("ppo", {"torch_compile": False, "group_by_length": "false", "padding_free": "auto", "lora_dropout": 0}),
    ("grpo", {"use_vllm": True, "vllm_gpu_memory_utilization": 0.5}),
    ("grpo", {"num_iterations": 2, "epsilon": 0.1}),
    ("ppo", {"adaptive_kl": True, "kl_target": 3.0, "kl_horizon": 500}),
    ("ppo", {"reward_norm_samples": 128}),
    ("sft", {"packing": True}),
])
def test_it_accepts_the_same_settings_where_the_trainer_reads_them(method, config):
    config_validate(method, config)


@pytest.mark.dbless
@pytest.mark.parametrize("method", ["ppo", "rloo", "grpo"])
def test_it_stores_the_flags_an_online_trainer_never_reads_as_off_and_leaves_them_out_of_the_form(method):
    from training.views.forms import config_fields

    values = config_validate(method, {})
    for name in ("torch_compile", "use_liger_kernel", "padding_free", "group_by_length"):
        assert values[name] is False, name  # TrainConfig's default group_by_length=True must not show on a PPO run
    shown = {row["name"] for row in config_fields(method)}
    assert shown.isdisjoint({"torch_compile", "use_liger_kernel", "padding_free", "group_by_length"})
    assert {"learning_rate", "bf16", "lora_r"} <= shown


@pytest.mark.dbless
def test_it_resolves_dpo_padding_free_before_the_run_to_what_trl_uses(monkeypatch):
    from training.recipes import base

    # A GPU worker with flash attention installed (this machine has neither): there auto used to say
    # True for DPO while TRL 1.16 padded anyway. SFT, whose trainer takes it, shows the probe is on.
    monkeypatch.setattr(base, "flash_attention_available", lambda: True)
    resolve = lambda method: config_resolve(method, {}, use_lora=True, device_type="cuda", bf16_supported=True, n_params=10**8)  # noqa: E731
    assert resolve("sft").padding_free is True
    assert resolve("dpo").padding_free is False


@pytest.mark.dbless
def test_it_defaults_the_ppo_critic_to_the_policy_which_works_with_any_reward_model():
    assert config_validate("ppo", {})["critic_init"] == "policy"


@pytest.mark.dbless
def test_it_computes_an_auto_kto_weight_from_the_one_that_is_set():
    labels = [True] * 25 + [False] * 75
    # The case: desirable 2, undesirable auto gave 2/1, a ratio of 0.67.
    dw, uw = class_weights(labels, 2.0, None)
    assert dw == 2.0 and 1 <= weight_ratio(labels, dw, uw) <= 4 / 3 + 1e-3
    dw, uw = class_weights(labels, None, 0.5)
    assert uw == 0.5 and 1 <= weight_ratio(labels, dw, uw) <= 4 / 3 + 1e-3
    # Many desirable rows: a large set desirable weight is balanced by the undesirable one, to the 4/3 edge.
    many = [True] * 90 + [False] * 10
    dw, uw = class_weights(many, 3.0, None)
    assert dw == 3.0 and weight_ratio(many, dw, uw) == pytest.approx(4 / 3, rel=1e-3)
    # Both set: kept as they are, whatever the ratio (the run warns instead).
    assert class_weights(labels, 2.0, 1.0) == (2.0, 1.0)


@pytest.mark.dbless
def test_a_kto_run_warns_when_both_weights_set_leave_trls_range():
    from types import SimpleNamespace

    from datasets import Dataset

    from tests.training.tiny_rl import FakeProgress
    from training.recipes import kto

    rows = Dataset.from_list([{"prompt": "p", "completion": "c", "label": i < 25} for i in range(100)])
    ctx = SimpleNamespace(progress=FakeProgress())
    cfg = config_resolve("kto", {"desirable_weight": 2.0, "undesirable_weight": 1.0}, use_lora=True, device_type="cpu",
                         bf16_supported=False, n_params=0)
    _, _, notes = kto.prepare(train_ds=rows, test_ds=None, cfg=cfg, ctx=ctx)
    assert notes["weight_ratio"] == pytest.approx(2 * 25 / 75, abs=1e-3) and "outside the [1, 4/3] range" in notes["weight_warning"]
    assert any(line.startswith("warning: ") for line in ctx.progress.lines)
    # One weight set: the other is computed, in range, and nothing to warn about.
    cfg = config_resolve("kto", {"desirable_weight": 2.0}, use_lora=True, device_type="cpu", bf16_supported=False, n_params=0)
    _, _, notes = kto.prepare(train_ds=rows, test_ds=None, cfg=cfg, ctx=SimpleNamespace(progress=FakeProgress()))
    assert "weight_warning" not in notes and 1 <= notes["weight_ratio"] <= 4 / 3 and cfg.desirable_weight == 2.0


# --- through the form and the API ---------------------------------------------------------------

def _tokenizer_folder(folder: Path, words: list[str]) -> Path:
    """A model folder with only a tokenizer: the start checks read no weights."""
    from tests.tiny_models import train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    train_tokenizer([" ".join(words)]).save_pretrained(folder)
    return folder


@pytest.fixture
def models(db, settings):
    """A policy base (the tests' tiny vocabulary, as SmolLM2 stands for the demo), a reward model
    with another tokenizer (as the demo's MiniLM one), one with the policy's tokenizer, and an encoder."""
    from tests.training.conftest import vocabulary

    root = Path(settings.ARTIFACT_ROOT)
    _tokenizer_folder(root / "models/policy", vocabulary())
    _tokenizer_folder(root / "models/rm-other", ["alpha", "beta", "gamma", "delta"])
    _tokenizer_folder(root / "models/rm-same", vocabulary())
    make = lambda name, kind: ModelArtifact.objects.create(name=name, kind=kind, source=ModelArtifact.Source.LOCAL,  # noqa: E731
                                                           path=f"models/{name}")
    return {
        "policy": make("policy", ModelArtifact.Kind.CAUSAL_LM),
        "rm_other": make("rm-other", ModelArtifact.Kind.REWARD_MODEL),
        "rm_same": make("rm-same", ModelArtifact.Kind.REWARD_MODEL),
        "encoder": make("minilm", ModelArtifact.Kind.ENCODER),
    }


def _form(client, project, snapshot, base, method, reward_model=None, **config):
    data = {"snapshot": snapshot.pk, "base_model": base.pk, "method": method, "training": "lora",
            **{f"{method}-{k}": str(v) for k, v in config.items()}}
    if reward_model is not None:
        data["reward_model"] = reward_model.pk
    return client.post(f"/training/projects/{project.slug}/new/", data)


def _api(client, project, snapshot, base, method, reward_model=None, num_processes=1, **config):
    body = {"project": project.slug, "snapshot": snapshot.pk, "base_model": base.name, "method": method, "config": config,
            "num_processes": num_processes}
    if reward_model is not None:
        body["reward_model"] = reward_model.name
    return client.post("/api/training/runs/", body, format="json")


@pytest.mark.django_db
def test_it_refuses_an_ignored_setting_in_the_form_and_the_api(client_for, api_for, project, snapshot, models, owner):
    page = _form(client_for(owner), project, snapshot, models["policy"], "dpo", loss_type="hinge", label_smoothing=0.1)
    assert page.status_code == 400 and "label_smoothing: the hinge loss ignores it" in page.content.decode()
    response = _api(api_for(owner), project, snapshot, models["policy"], "ppo", reward_model=models["rm_same"], torch_compile=True)
    assert response.status_code == 400
    assert "ppo does not use it" in response.json()["torch_compile"][0]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_critic_from_a_reward_model_with_another_tokenizer_naming_the_fix(client_for, api_for, project, snapshot, models, owner):
    page = _form(client_for(owner), project, snapshot, models["policy"], "ppo", reward_model=models["rm_other"], critic_init="reward_model")
    assert page.status_code == 400
    text = page.content.decode()
    assert "critic_init: the reward model rm-other uses another tokenizer than the base model policy" in text
    assert "set critic_init to policy" in text
    response = _api(api_for(owner), project, snapshot, models["policy"], "ppo", reward_model=models["rm_other"], critic_init="reward_model")
    assert response.status_code == 400 and "set critic_init to policy" in response.json()["critic_init"][0]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_queues_ppo_with_the_forms_defaults_and_the_demos_kind_of_reward_model(client_for, project, snapshot, models, owner):
    # The form's defaults with a reward model whose tokenizer differs (MiniLM beside SmolLM2 in the demo).
    response = _form(client_for(owner), project, snapshot, models["policy"], "ppo", reward_model=models["rm_other"])
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert TrainingRun.objects.get().config["critic_init"] == "policy"
    # A reward model with the policy's tokenizer may seed the critic.
    response = _form(client_for(owner), project, snapshot, models["policy"], "ppo", reward_model=models["rm_same"], critic_init="reward_model")
    assert response.status_code == 302
    assert TrainingRun.objects.count() == 2


@pytest.mark.django_db
def test_it_refuses_a_base_model_the_method_cannot_train_naming_what_it_takes(client_for, api_for, project, snapshot, models, owner):
    page = _form(client_for(owner), project, snapshot, models["encoder"], "ppo", reward_model=models["rm_same"])
    assert page.status_code == 400
    assert "a ppo run cannot start from an encoder (minilm); choose a causal language model or trained policy" in page.content.decode()
    response = _api(api_for(owner), project, snapshot, models["encoder"], "grpo", reward_model=models["rm_same"])
    assert response.status_code == 400 and "choose a causal language model" in response.json()["base_model"][0]
    # An encoder is a fine base for a reward model, but Liger has nothing for it.
    response = _api(api_for(owner), project, snapshot, models["encoder"], "reward", use_liger_kernel=True)
    assert response.status_code == 400 and "Liger has no kernels for an encoder" in response.json()["use_liger_kernel"][0]
    assert _api(api_for(owner), project, snapshot, models["encoder"], "reward").status_code == 201
    TrainingRun.objects.all().delete()
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_grpo_batch_that_does_not_hold_whole_groups_on_all_processes(api_for, project, snapshot, models, owner):
    client = api_for(owner)
    bad = _api(client, project, snapshot, models["policy"], "grpo", reward_model=models["rm_same"],
               per_device_train_batch_size=6, num_generations=4)
    assert bad.status_code == 400 and "not a multiple of num_generations (4)" in bad.json()["per_device_train_batch_size"][0]
    # Two processes make 12, still not whole groups of 8; 2 × 2 of 4 are.
    bad = _api(client, project, snapshot, models["policy"], "grpo", reward_model=models["rm_same"], num_processes=2,
               per_device_train_batch_size=6, num_generations=8)
    assert bad.status_code == 400
    ok = _api(client, project, snapshot, models["policy"], "grpo", reward_model=models["rm_same"], num_processes=2,
              per_device_train_batch_size=2, num_generations=4)
    assert ok.status_code == 201, ok.json()


@pytest.mark.django_db
def test_only_managers_reach_the_refusals(client_for, project, snapshot, models, member, outsider):
    # The checks read model folders: a rater or an outsider must not learn anything from them.
    for user, code in ((member, 403), (outsider, 404)):
        response = _form(client_for(user), project, snapshot, models["policy"], "ppo", reward_model=models["rm_other"],
                         critic_init="reward_model")
        assert response.status_code == code
    assert not TrainingRun.objects.exists()


# --- what the trainer used, recorded and shown ----------------------------------------------------

@pytest.mark.slow
@pytest.mark.dbless
def test_it_records_what_trl_made_of_the_settings(tmp_path):
    """Read back from the built trainer: SFT's packing turns padding-free on although the config (auto on
    a CPU) says off; DPO pads whatever it is asked."""
    from tests.training.conftest import build_tiny_model, preference_rows, sft_rows, write_snapshot_folder
    from training.core.chat import chat_rows
    from training.recipes import dpo, sft
    from training.recipes.common import causal_lm_load, load_split, load_tokenizer, trainer_effective

    base = build_tiny_model(tmp_path / "base")
    tokenizer = load_tokenizer(base)
    folder = write_snapshot_folder(tmp_path / "sft", sft_rows(4, seed=1), [], fmt="sft")
    cfg = config_resolve("sft", {"max_length": 64, "packing": True}, use_lora=True, device_type="cpu", bf16_supported=False, n_params=0)
    assert cfg.padding_free is False
    trainer = sft.trainer_build(cfg=cfg, model=causal_lm_load(path=base), tokenizer=tokenizer, use_lora=True, device_type="cpu",
                                train_ds=chat_rows(load_split(folder, "sft", "train", tmp_path / "c1"), tokenizer), output_dir=tmp_path / "o1")
    used = trainer_effective(trainer)
    assert used["padding_free"] is True and used["bf16"] is False and used["group_by_length"] is True
    assert (used["lora_r"], used["lora_alpha"], used["lora_dropout"]) == (16, 32, 0.0)

    folder = write_snapshot_folder(tmp_path / "dpo", preference_rows(4, seed=2), [])
    cfg = config_resolve("dpo", {"max_length": 64, "group_by_length": False, "lora_r": 4}, use_lora=True, device_type="cpu",
                         bf16_supported=False, n_params=0)
    trainer = dpo.trainer_build(cfg=cfg, model=causal_lm_load(path=base), tokenizer=tokenizer, use_lora=True, device_type="cpu",
                                train_ds=load_split(folder, "preference", "train", tmp_path / "c2"), output_dir=tmp_path / "o2")
    used = trainer_effective(trainer)
    assert used["padding_free"] is False and used["group_by_length"] is False and used["lora_r"] == 4

    # use_margin on a snapshot without margins (a binary project's): the reward trainer has none to use.
    from training.recipes import reward

    cfg = config_resolve("reward", {"max_length": 64, "use_margin": True}, use_lora=False, device_type="cpu", bf16_supported=False, n_params=0)
    for rows, expected in ((preference_rows(4, seed=5), False), (preference_rows(4, seed=5, margin=True), True)):
        folder = write_snapshot_folder(tmp_path / f"rm-{expected}", rows, [])
        trainer = reward.trainer_build(cfg=cfg, model=reward.model_load(path=base), tokenizer=tokenizer, use_lora=False, device_type="cpu",
                                       train_ds=load_split(folder, "preference", "train", tmp_path / f"c-{expected}"),
                                       output_dir=tmp_path / f"o-{expected}")
        assert trainer_effective(trainer)["use_margin"] is expected


@pytest.mark.slow
@pytest.mark.dbless
def test_a_run_stores_what_its_trainer_used_in_its_result(tmp_path):
    """One step of DPO (through the shared run skeleton) and of PPO (ours): result["effective"] is
    what the run page shows."""
    from tests.training import tiny_rl
    from tests.training.conftest import build_tiny_model, preference_rows, write_snapshot_folder
    from training.recipes import dpo, ppo
    from training.recipes.catalog import TrainContext

    base = build_tiny_model(tmp_path / "base")
    folder = write_snapshot_folder(tmp_path / "snap", preference_rows(8, seed=3), preference_rows(4, seed=4))
    config = config_validate("dpo", {"max_steps": 1, "per_device_train_batch_size": 4, "max_length": 64, "sample_prompts": 0,
                                     "save_steps": 100, "lora_r": 4})
    ctx = TrainContext(run_id=1, method="dpo", config=config, use_lora=True, snapshot_dir=folder, base_model_path=base,
                       base_model_name="tiny", out_dir=tmp_path / "out", checkpoint_dir=tmp_path / "ck", work_dir=tmp_path / "work",
                       progress=tiny_rl.FakeProgress())
    used = dpo.train(ctx)["effective"]
    assert used["padding_free"] is False and used["bf16"] is False and used["lora_r"] == 4 and used["group_by_length"] is True

    tok = tiny_rl.tokenizer()
    setup = dict(policy=tiny_rl.save_policy(tmp_path / "policy", tok), reward=tiny_rl.save_reward_model(tmp_path / "rm", tok),
                 snapshot=tiny_rl.write_prompt_snapshot(tmp_path / "prompts", tiny_rl.PROMPTS, tiny_rl.HELD_OUT))
    config = config_validate("ppo", {"max_steps": 1, "per_device_train_batch_size": 8, "max_new_tokens": 4, "normalize_reward": False,
                                     "eval_prompts": 0, "sample_prompts": 0, "lora_r": 8})
    ctx = tiny_rl.context(tmp_path / "ppo", method="ppo", config=config, use_lora=True, progress=tiny_rl.FakeProgress(), **setup)
    used = ppo.train(ctx)["effective"]
    assert used["critic_init"] == "policy" and used["lora_r"] == 8 and used["lora_dropout"] == 0.0
    assert not any(used[k] for k in ("torch_compile", "use_liger_kernel", "padding_free", "group_by_length", "bf16"))

    from training.recipes import grpo

    config = config_validate("grpo", {"max_steps": 1, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 4,
                                      "eval_prompts": 0, "sample_prompts": 0, "lora_r": 4, "lora_dropout": 0.1})
    ctx = tiny_rl.context(tmp_path / "grpo", method="grpo", config=config, use_lora=True, progress=tiny_rl.FakeProgress(), **setup)
    used = grpo.train(ctx)["effective"]
    # GRPO honours LoRA dropout (TRL keeps dropout unless told otherwise); vLLM is off on a CPU.
    assert used["lora_r"] == 4 and used["lora_dropout"] == 0.1 and used["use_vllm"] is False
    assert not any(used[k] for k in ("torch_compile", "use_liger_kernel", "padding_free", "group_by_length", "bf16"))


@pytest.mark.django_db
def test_the_run_page_shows_the_settings_the_trainer_used(client_for, project, snapshot, base_model, owner, researcher, member):
    effective = {"bf16": True, "gradient_checkpointing": False, "use_liger_kernel": False, "padding_free": True, "lora_r": 16,
                 "lora_dropout": 0.0}
    run = TrainingRun.objects.create(project=project, snapshot=snapshot, base_model=base_model, method="sft", created_by=owner,
                                     status=TrainingRun.Status.SUCCEEDED, config={"padding_free": None, "bf16": None},
                                     result={"test": {"loss": 1.0}, "effective": effective})
    for user in (owner, researcher):
        page = client_for(user).get(f"/training/runs/{run.pk}/").content.decode()
        assert "Settings the trainer used" in page
        section = page[page.index("data-effective-settings"):]
        section = section[: section.index("</section>")]
        assert "<th>padding_free</th><td>on</td>" in section and "<th>bf16</th><td>on</td>" in section
        assert "<th>gradient_checkpointing</th><td>off</td>" in section and "<th>lora_r</th><td>16</td>" in section
        assert "<th>lora_dropout</th><td>0.0</td>" in section
    assert client_for(member).get(f"/training/runs/{run.pk}/").status_code == 403
    # A run from before this was recorded shows no such section.
    run.result = {"test": {"loss": 1.0}}
    run.save(update_fields=["result"])
    assert "Settings the trainer used" not in client_for(owner).get(f"/training/runs/{run.pk}/").content.decode()
