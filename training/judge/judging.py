"""One item, judged: ask the model what each kind needs, in both on-screen orders, and turn
the probabilities into a canonical value (training/judge/answers.py). Returns the value (None:
undecided) and a one-line rationale that shows the numbers behind it."""
from __future__ import annotations

from annotation.kinds import Kind
from training.judge import answers, prompts


def _pair(judge, template, prompt, texts, i: int, j: int, tally: answers.BiasTally) -> answers.PairVerdict:
    if judge.is_reward_model:
        raise AssertionError("reward models are scored per item, not per pair")
    q1 = judge.option_probs(system=template.system, user=prompts.pair_message(template, prompt, texts[i], texts[j]), options=prompts.PAIR_OPTIONS)
    q2 = judge.option_probs(system=template.system, user=prompts.pair_message(template, prompt, texts[j], texts[i]), options=prompts.PAIR_OPTIONS)
    verdict = answers.pair_verdict(q1, q2)
    tally.add(verdict)
    return verdict


def judge_item(*, judge, template: prompts.JudgeTemplate, project, prompt, texts: list[str], tally: answers.BiasTally, tie_band: float) -> tuple[dict | None, str]:
    kind = project.kind
    n = len(texts)
    rm_scores = judge.scores(prompt=prompt, responses=texts) if judge.is_reward_model else None

    if kind == Kind.BINARY:
        if rm_scores is not None:
            verdict = answers.pair_verdict_from_scores(rm_scores[0], rm_scores[1])
        else:
            verdict = _pair(judge, template, prompt, texts, 0, 1, tally)
        value = answers.binary_value(verdict.p, allow_tie=project.allow_tie, tie_band=tie_band)
        why = f"P(candidate 0 better) = {verdict.p:.3f}" + ("" if rm_scores is None else f" from rewards {rm_scores[0]:.3f} / {rm_scores[1]:.3f}")
        if rm_scores is None:
            why += f"; P(first shown better) = {verdict.p_first:.3f}"

    elif kind == Kind.LIKERT:
        points = project.likert_points
        if rm_scores is not None:
            p = answers.pair_verdict_from_scores(rm_scores[0], rm_scores[1]).p
            expected = answers.likert_expected_from_p(p, points=points)
            why = f"P(candidate 0 better) = {p:.3f} from rewards {rm_scores[0]:.3f} / {rm_scores[1]:.3f}"
        else:
            options = prompts.likert_options(points)
            q1 = judge.option_probs(system=template.system, user=prompts.likert_message(template, prompt, texts[0], texts[1], points=points), options=options)
            q2 = judge.option_probs(system=template.system, user=prompts.likert_message(template, prompt, texts[1], texts[0], points=points), options=options)
            expected, p_first = answers.likert_expected(q1, q2)
            tally.add(answers.PairVerdict(p=0.5, p_first=p_first, flipped=False))
            why = f"expected point {expected + 1:.2f} of {points} (1 = candidate 0 much better); P(first shown better) = {p_first:.3f}"
        value = answers.likert_value(expected, points=points)

    elif kind == Kind.RANKING:
        if rm_scores is not None:
            value = answers.ranking_from_scores(rm_scores, allow_ties=project.ranking_allow_ties)
            why = "rewards " + ", ".join(f"{s:.3f}" for s in rm_scores)
        else:
            pair_p = {(i, j): _pair(judge, template, prompt, texts, i, j, tally).p for i, j in answers.pairs_of(n)}
            value = answers.ranking_value(n, pair_p, allow_ties=project.ranking_allow_ties)
            why = "pairwise P(i better than j): " + ", ".join(f"{i}>{j} {p:.2f}" for (i, j), p in pair_p.items())

    elif kind == Kind.RATING:
        if rm_scores is not None:
            raise answers_error("a reward model gives relative scores, not points of a rating scale; judge a rating project with a causal LM")
        low, high = project.rating_min, project.rating_max
        options = prompts.rating_options(low, high)
        expected = [
            answers.rating_expected(judge.option_probs(system=template.system, user=prompts.rating_message(template, prompt, t, low=low, high=high), options=options), low=low)
            for t in texts
        ]
        value = answers.rating_value(expected, low=low, high=high)
        why = "expected scores " + ", ".join(f"{e:.2f}" for e in expected)
    else:
        raise answers_error(f"unknown judgment kind {kind!r}")
    tally.count(value)
    return value, why


def answers_error(message: str):
    from training.judge.judges import JudgeError

    return JudgeError(message)
