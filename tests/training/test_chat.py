"""A text prompt is one user turn for an instruct model (training/core/chat.py), everywhere it sees one."""
import pytest

from training.core.chat import PLAIN_CHAT_TEMPLATE, as_chat, chat_rows, render_pair, render_prompt, special_tokens

pytestmark = pytest.mark.dbless  # the database plays no part: CI runs it on SQLite only

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture
def tokenizers():
    from tests.training.conftest import build_tokenizer

    instruct, plain = build_tokenizer(), build_tokenizer()
    instruct.chat_template, plain.chat_template = CHATML, PLAIN_CHAT_TEMPLATE
    return instruct, plain


def test_a_text_prompt_is_a_user_turn_only_for_a_model_with_its_own_template(tokenizers):
    instruct, plain = tokenizers
    assert render_prompt(instruct, "hello there") == "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"
    assert not special_tokens(instruct, "hello there")  # the template carries its own markers
    assert render_prompt(plain, "hello there") == "hello there" and special_tokens(plain, "hello there")
    chat = [{"role": "user", "content": "hi"}]
    assert as_chat(plain, chat) is chat and render_prompt(plain, chat) == "user: hi\nassistant: "
    assert render_pair(instruct, "q", "a").endswith("<|im_start|>assistant\na<|im_end|>\n")
    assert render_pair(plain, "q", " a") == "q a" + (plain.eos_token or "")


def test_it_turns_text_rows_of_a_split_into_conversations_for_an_instruct_model(tokenizers):
    from datasets import Dataset

    instruct, plain = tokenizers
    rows = Dataset.from_list([{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    converted = chat_rows(rows, instruct)[0]
    assert converted["prompt"] == [{"role": "user", "content": "q"}]
    assert converted["chosen"] == [{"role": "assistant", "content": "good"}] and converted["rejected"][0]["content"] == "bad"
    assert chat_rows(rows, plain)[0] == {"prompt": "q", "chosen": "good", "rejected": "bad"}


@pytest.mark.slow
def test_smollm2_answers_the_demo_prompts_instead_of_ending_at_once(db):
    """Given bare text, SmolLM2-Instruct ended half the demo's answers at once (empty) and the
    generation batch sent to raters failed; in its chat turn it answers every one."""
    from django.core.management import call_command

    from annotation.models import Project
    from training.loop.generation import Sampling, generate, policy_load
    from training.registry.services import model_register_smollm2

    call_command("seed_demo", verbosity=0)
    prompts = [item.prompt for item in Project.objects.get(slug="demo-binary").items.order_by("id")[:8]]
    net, tokenizer = policy_load(model_register_smollm2(), device="cpu")
    answers = generate(net=net, tokenizer=tokenizer, prompts=prompts, sampling=Sampling(temperature=0.7, max_new_tokens=24))
    assert all(a[0]["text"].strip() for a in answers), [a[0]["text"] for a in answers]
