"""Back to raters: a generation batch. For each prompt of a set (a snapshot's split, or a
project's items), K answers from each of one or more registered policies, generated on the gpu
worker and imported as items into a project through the ordinary importer (import_records: the
same validation, one transaction, ids already there skipped, so a retried job adds nothing twice).
Answers a policy already made for the same prompts and sampling are read back instead of made
again (training/loop/answers.py).

Each candidate's model_name is "<model> T=<temperature>", so the project's Bradley–Terry
leaderboard ranks each policy at each setting; its metadata carries the model id and every
sampling setting. `head_to_head` reads the human verdict between two of them.

A batch of policies with one answer each may name a reward model: the job then also records the
reward model's verdict on the very answers it sends to raters (training/rl/comparison.py::compare on
those answers), each policy against the LAST one, the reference: win rate with its interval and the
mean KL to the reference on the policy's own answers. The page shows the raters' and the reward
model's verdicts on the same answers side by side, with no second generation, and a run's
checkpoint batch gets each checkpoint's KL this way even when training logged none (GRPO with
beta 0 never computes it). For the verdict the models are loaded again one at a time beside the
reference, so a batch of many checkpoints never holds more than two."""
from __future__ import annotations

from django.db import transaction

from annotation.models import Project
from training.loop.generation import GenerationError, Sampling, policy_validate
from training.loop.models import Job
from training.registry.models import ModelArtifact
from training.loop.prompt_sources import prompt_source, prompts_load

MAX_PROMPTS = 5000
MAX_ANSWERS_PER_PROMPT = 16
# Sequences generated at once (prompts × answers each): measured on 2 CPU threads with
# SmolLM2-135M, 32 rows answer 1.7x faster than 8 (bench/loop_rounds.py's batches); a GPU only gains.
ROWS_PER_BATCH = 32


def candidate_name(model_name: str, temperature: float) -> str:
    return f"{model_name} T={temperature:g}"[:200]


def generation_batch_create(*, project: Project, policies: list[tuple[ModelArtifact, int, Sampling]], snapshot=None,
                            prompts_project: Project | None = None, split: str = "test", limit: int = 100,
                            run=None, created_by=None, reward_model: ModelArtifact | None = None, reward_weights=None) -> Job:
    """Validate and queue a batch. policies: (model, k answers per prompt, sampling) each; the
    first one's page owns the job. The answers per prompt must fit the target project's kind.
    `reward_model` (one answer per policy): also record its verdict on the answers, each policy
    against the last (see the module's docstring); `reward_weights` as for an evaluation."""
    if not policies:
        raise GenerationError("policies: name at least one policy")
    names = set()
    specs = []
    for model, k, sampling in policies:
        policy_validate(model, field="policies")
        sampling.validate()
        if not 1 <= int(k) <= MAX_ANSWERS_PER_PROMPT:
            raise GenerationError(f"k: {k} answers per prompt from {model.name}; use 1..{MAX_ANSWERS_PER_PROMPT}")
        name = candidate_name(model.name, sampling.temperature)
        if name in names:
            raise GenerationError(f"policies: {name} appears twice; give each policy its own temperature")
        names.add(name)
        specs.append({"model": model.pk, "model_name": model.name, "candidate_name": name, "k": int(k), "sampling": sampling.as_dict()})
    per_item = sum(s["k"] for s in specs)
    expected = project.candidates_per_item
    if expected is not None and per_item != expected:
        raise GenerationError(f"k: a {project.kind} project needs {expected} answers per item; this batch makes {per_item}")
    if per_item < 2 and expected is None:
        raise GenerationError("k: raters compare answers; a batch needs at least 2 per prompt")
    if not 1 <= int(limit) <= MAX_PROMPTS:
        raise GenerationError(f"limit: {limit} must be 1..{MAX_PROMPTS}")
    params = {"policies": specs, "prompts": prompt_source(snapshot=snapshot, project=prompts_project, split=split), "limit": int(limit)}
    if reward_model is not None:
        params.update(_judge_params(specs, reward_model, reward_weights))
    from training.loop.jobs import job_enqueue

    with transaction.atomic():
        job = Job.objects.create(kind=Job.Kind.GENERATION, policy=policies[0][0], project=project, run=run, params=params, created_by=created_by)
        job_enqueue(job=job)
    return job


def batch_records(*, job_id: int, prompts: list, answers: dict[str, list[list[dict]]], specs: list[dict], source: str) -> tuple[list[dict], dict]:
    """Import records: one item per prompt with every policy's answers, ids stable per job; and
    the empty answers per candidate name.

    A policy may end an answer at once (or with whitespace only). The importer refuses an empty
    response, and a project needs a fixed number of answers per item, so a prompt with an empty
    answer is left out whole, and the result says how many answers of each policy were empty:
    the human win rate is then read on the prompts where every policy answered, and the count
    of empty answers is a figure about the policy in its own right."""
    records, empty = [], {spec["candidate_name"]: 0 for spec in specs}
    for i, prompt in enumerate(prompts):
        responses = []
        for spec in specs:
            for j, answer in enumerate(answers[spec["candidate_name"]][i]):
                if not answer["text"].strip():
                    empty[spec["candidate_name"]] += 1
                responses.append({
                    "text": answer["text"],
                    "model": spec["candidate_name"],
                    "metadata": {"model": spec["model_name"], "model_id": spec["model"], "sample": j, **spec["sampling"],
                                 "tokens": len(answer["response_ids"]), "finished": answer["finished"], "generation_job": job_id},
                })
        if any(not r["text"].strip() for r in responses):
            continue
        records.append({"id": f"gen{job_id}-{i:05d}", "prompt": prompt, "responses": responses,
                        "metadata": {"generation_job": job_id, "prompts": source}})
    return records, empty


def _judge_params(specs: list[dict], reward_model: ModelArtifact, raw_weights) -> dict:
    from training.loop.evaluation import reward_model_validate, reward_weights_checked

    reward_model_validate(reward_model)
    if len(specs) < 2 or any(s["k"] != 1 for s in specs):
        raise GenerationError("reward_model: its verdict compares each policy's answer with the last policy's, one to one; "
                              f"this batch has {' + '.join(str(s['k']) for s in specs)} answers per prompt (give two or more policies, k=1 each)")
    weights = reward_weights_checked(reward_model, raw_weights)
    return {"reward_model": reward_model.pk, "reward_model_name": reward_model.name, **({"reward_weights": weights} if weights else {})}


def generation_batch_execute(*, job: Job, progress):
    """What the worker runs for a generation job: generate, then import in one transaction; with a
    reward model, then its verdict on the imported answers."""
    import gc

    from annotation.importers.service import import_records
    from training.loop.answers import answers_keep, answers_path, answers_read
    from training.loop.generation import device_pick, generate, policy_load

    specs = job.params["policies"]
    judged = len(specs) - 1 if "reward_model" in job.params else 0  # comparisons to the reference
    prompts = prompts_load(job.params["prompts"], limit=job.params.get("limit"))
    total = len(prompts) * (len(specs) + judged)
    progress.step(done=0, total=total)
    answers, reused, device = {}, [], device_pick()
    for n, spec in enumerate(specs):
        model = ModelArtifact.objects.select_related("base_model").get(pk=spec["model"])
        batch_size = max(1, ROWS_PER_BATCH // spec["k"])
        kept = answers_path(model=model, sampling=spec["sampling"], k=spec["k"], batch_size=batch_size,
                            device=device, prompts=prompts)
        made = answers_read(kept, prompts=len(prompts), k=spec["k"])
        if made is not None:
            reused.append(spec["candidate_name"])
        else:
            net, tokenizer = policy_load(model)
            made = generate(net=net, tokenizer=tokenizer, prompts=prompts, n=spec["k"], sampling=Sampling(**spec["sampling"]),
                            batch_size=batch_size, on_batch=lambda done, n=n: progress.step(done=n * len(prompts) + done))
            answers_keep(kept, made)
            del net
            gc.collect()
        answers[spec["candidate_name"]] = made
    records, empty = batch_records(job_id=job.pk, prompts=prompts, answers=answers, specs=specs,
                                   source=job.params["prompts"].get("label", ""))
    progress.step(done=len(prompts) * len(specs))
    if not records:
        raise GenerationError(f"every one of the {len(prompts)} prompts got an empty answer from some policy "
                              f"({_empty_text(empty)}): nothing to send to raters")
    batch = import_records(project=job.project, records=records, created_by=job.created_by)
    result = {"prompts": len(prompts), "items_created": batch.items_created, "items_skipped": batch.items_skipped,
              "prompts_left_out": len(prompts) - len(records), "empty_answers": empty,
              "models": [s["candidate_name"] for s in specs], "answers_reused": reused, "import_batch": batch.pk}
    if judged:
        verdicts = _verdicts(job, prompts, [answers[s["candidate_name"]] for s in specs],
                             on_progress=lambda done: progress.step(done=len(prompts) * len(specs) + done))
        result["reward_model"] = verdicts[0]  # the first policy's: what the job page shows
        result["reward_model_by_policy"] = {v["policy"]: v for v in verdicts}
    progress.step(done=total)
    return result, batch


def _verdicts(job: Job, prompts: list, answers: list[list], *, on_progress) -> list[dict]:
    """The reward model's verdict of each policy but the last over the last, on the answers the raters
    got: prompts where any answer was empty are left out (batch_records leaves them out of the items)."""
    import gc

    from training.loop.generation import policy_load
    from training.registry.scoring import reward_model_load
    from training.rl.comparison import compare

    params = job.params
    specs = params["policies"]
    kept = [i for i in range(len(prompts)) if all(side[i][0]["text"].strip() for side in answers)]
    judge = ModelArtifact.objects.select_related("base_model").get(pk=params["reward_model"])
    reward = reward_model_load(judge, weights=params.get("reward_weights"))
    reference, ref_tokenizer = policy_load(ModelArtifact.objects.select_related("base_model").get(pk=specs[-1]["model"]))
    out = []
    for n, spec in enumerate(specs[:-1]):
        policy, tokenizer = policy_load(ModelArtifact.objects.select_related("base_model").get(pk=spec["model"]))
        if ref_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise GenerationError(f"reward_model: {specs[-1]['model_name']} has another tokenizer than "
                                  f"{spec['model_name']}; the KL between them needs the same one")
        result = compare(policy=policy, reference=reference, tokenizer=tokenizer, reward=reward,
                         prompts=[prompts[i] for i in kept], answers=[answers[n][i] for i in kept],
                         ref_answers=[answers[-1][i] for i in kept], sampling=Sampling(**spec["sampling"]),
                         batch_size=ROWS_PER_BATCH // 2, samples_kept=0,
                         on_progress=lambda done, total, n=n: on_progress(n * len(prompts) + max(0, done - 2 * len(kept))))
        result.pop("samples")
        out.append({**result, "policy": spec["candidate_name"], "reference": specs[-1]["candidate_name"], "reward_model": judge.name})
        del policy
        gc.collect()
    return out


def batch_summary(result: dict, target: str) -> str:
    """One line for the commands: what was imported, and what was left out and why."""
    line = (f"{result['prompts']} prompts, {result['items_created']} items imported into {target} "
            f"({result['items_skipped']} already there) from {', '.join(result['models'])}")
    if result.get("answers_reused"):
        line += f"; answers kept from an earlier batch: {', '.join(result['answers_reused'])}"
    if result.get("prompts_left_out"):
        line += f"; {result['prompts_left_out']} prompts left out for an empty answer ({_empty_text(result['empty_answers'])})"
    return line


def _empty_text(empty: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n} empty" for name, n in empty.items() if n) or "none empty"


def head_to_head(*, project: Project, a: str, b: str) -> dict:
    """Human verdict between two candidate model names in a project: a's win rate over b (a tie
    counts half) with n and a 95 % Wilson interval, from the games the leaderboard fits."""
    from annotation.quality.leaderboard import project_games
    from training.core.stats import win_figures

    models, winner, loser, tie = project_games(project=project)
    if a not in models or b not in models:
        return {"a": a, "b": b, "n": 0, "win_rate": None}
    ia, ib = models.index(a), models.index(b)
    pair = ((winner == ia) & (loser == ib)) | ((winner == ib) & (loser == ia))
    n = int(pair.sum())
    ties = int((pair & tie).sum())
    wins = int((pair & ~tie & (winner == ia)).sum())
    return {"a": a, "b": b, **win_figures(wins=wins, ties=ties, n=n)}
