"""The judge's arithmetic without the database: the probability LMJudge gives each option (its
tokens, then the end of the turn), and how answers.py orients the two on-screen orders into one
verdict. Expected numbers are worked out in the comments. These are the fast tests the mutation
sweep (pyproject [tool.mutmut]) runs against training/judge/judges.py and answers.py."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from tests.training.judge_models import RuleJudge
from training.judge import answers
from training.judge.judges import JudgeError

pytestmark = pytest.mark.dbless


def test_it_gives_each_option_the_probability_of_its_tokens_then_the_end_of_the_turn():
    # RuleJudge: after "<|assistant|>" the rule's next token has logit 10, every other 0 (V tokens).
    # hit = e^10 / (e^10 + V - 1) for the token the rule says, miss = 1 / (e^10 + V - 1) for another;
    # once off the rule's path every token has 1/V ("blind"). The judge means "10" = "1" "0", then <eos>.
    #   "10": "1" hit, "0" hit, <eos> hit                      -> hit^3
    #   "1":  "1" hit, <eos> where the rule says "0": miss     -> hit * miss
    #   "11": "1" hit, "1" miss, then off the path: <eos> 1/V  -> hit * miss / V
    #   "2":  "2" miss, <eos> 1/V                              -> miss / V
    judge = RuleJudge(lambda context: "10")
    v = len(judge.tokenizer)
    e = math.exp(10.0)
    hit, miss = e / (e + v - 1), 1 / (e + v - 1)
    raw = [hit**3, hit * miss, hit * miss / v, miss / v]
    probs = judge.option_probs(system="You judge.", user="Say the number 10.", options=["10", "1", "11", "2"])
    assert probs == pytest.approx([r / sum(raw) for r in raw], rel=1e-4)
    assert judge.end_id() == judge.tokenizer.eos_token_id  # the template writes <eos> after an answer
    # A judge that says neither option: each gets miss x 1/V, so half each (the probabilities sum to 1).
    assert RuleJudge(lambda context: "a").option_probs(system="s", user="u", options=["1", "2"]) == pytest.approx([0.5, 0.5])
    # The model reads both the instructions and the question.
    reads_both = RuleJudge(lambda context: "a" if "follow" in context and "thanks" in context else "b")
    assert reads_both.option_probs(system="follow instructions", user="thanks", options=["a", "b"])[0] > 0.99
    # Each option list is tokenized for itself (the cache is per list).
    assert judge.option_ids(["a", "b"]) != judge.option_ids(["1", "2"])


def test_it_refuses_options_it_cannot_tell_apart():
    judge = RuleJudge(lambda context: "a")
    for options in (["a", "A"], ["a", ""], ["a", "<eos>"]):  # same tokens (lower-cased), no tokens, the end marker itself
        with pytest.raises(JudgeError, match="cannot tell the answers"):
            judge.option_probs(system="s", user="u", options=options)


def test_it_orients_a_pair_asked_in_both_orders():
    # q1: candidate i shown as A, P(A) = 0.9; q2: j shown as A, P(B) = 0.7 (i again).
    # P(i better) = (0.9 + 0.7) / 2 = 0.8; P(first shown better) = (0.9 + 0.3) / 2 = 0.6; both orders agree.
    v = answers.pair_verdict([0.9, 0.1], [0.3, 0.7])
    assert (v.p, v.p_first, v.flipped) == (pytest.approx(0.8), pytest.approx(0.6), False)
    # Always "A" (unnormalised 1.8 / 0.2 -> 0.9 / 0.1): 0.5 for i, first-position share 0.9, flipped by the order.
    v = answers.pair_verdict([1.8, 0.2], [0.9, 0.1])
    assert (v.p, v.p_first, v.flipped) == (pytest.approx(0.5), pytest.approx(0.9), True)
    # A reward model: Bradley-Terry, no screen order.
    v = answers.pair_verdict_from_scores(2.0, 1.0)
    assert (v.p, v.p_first, v.flipped) == (pytest.approx(1 / (1 + math.exp(-1))), 0.5, False)
    # Exactly undecided in both orders: no order flip. All-zero probabilities count as even.
    assert answers.pair_verdict([0.5, 0.5], [0.5, 0.5]).flipped is False
    assert answers.normalise([0.0, 0.0]) == [0.5, 0.5] and answers.normalise([1.0, 3.0]) == [0.25, 0.75]


def test_it_orients_likert_answers_asked_in_both_orders():
    # 5 points. q1 (c0 shown first): all on point 1 (first shown much better). q2 (c1 shown first):
    # all on point 4 (second shown better, i.e. c0): mirrored, index 4 - 3 = 1. Combined: half on
    # index 0, half on 1 -> expected 0.5. First-shown share: 1 in q1, 0 in q2 -> 0.5.
    expected, first = answers.likert_expected([1, 0, 0, 0, 0], [0, 0, 0, 1, 0])
    assert (expected, first) == (pytest.approx(0.5), pytest.approx(0.5))
    # A judge that always says point 2: 1 and 3 on the c0 axis -> expected 2 (the middle), first-shown share 1.
    expected, first = answers.likert_expected([0, 2, 0, 0, 0], [0, 1, 0, 0, 0])
    assert (expected, first) == (pytest.approx(2.0), pytest.approx(1.0))
    # All on the middle point: no side either way -> 0.5.
    assert answers.likert_expected([0, 0, 1, 0, 0], [0, 0, 1, 0, 0]) == (pytest.approx(2.0), pytest.approx(0.5))
    # Mass on the middle point as well as on both sides: the first-shown share counts the sides only.
    # q = [1, 0, 2, 1, 0] / 4 in both orders: left 0.25, right 0.25 -> 0.5; combined with the mirror
    # [0, 0.25, 0.5, 0, 0.25]: [0.125, 0.125, 0.5, 0.125, 0.125] -> expected 2.
    assert answers.likert_expected([1, 0, 2, 1, 0], [1, 0, 2, 1, 0]) == (pytest.approx(2.0), pytest.approx(0.5))
    assert answers.likert_expected_from_p(1.0, points=7) == 0.0 and answers.likert_expected_from_p(0.25, points=5) == 3.0


def test_it_turns_probabilities_into_values():
    assert answers.binary_value(0.51, allow_tie=True) == {"winner": "tie"}
    assert answers.binary_value(0.5, allow_tie=True, tie_band=0.0) == {"winner": "tie"}  # the band's edge is a tie
    assert answers.binary_value(0.515, allow_tie=False) is None  # inside the band, no tie allowed: undecided
    assert answers.binary_value(0.53, allow_tie=True) == {"winner": 0} and answers.binary_value(0.47, allow_tie=True) == {"winner": 1}
    # 7 points, centre index 3. Index 0 -> c0 by 3; 2.6 rounds to 3 -> tie; 4.4 -> index 4 -> c1 by 1; 6 -> c1 by 3.
    assert answers.likert_value(0.0, points=7) == {"winner": 0, "strength": 3}
    assert answers.likert_value(2.6, points=7) == {"winner": "tie", "strength": 0}
    assert answers.likert_value(3.0, points=7) == {"winner": "tie", "strength": 0}  # exactly the middle
    assert answers.likert_value(4.2, points=9) == {"winner": "tie", "strength": 0}  # 9 points: index 4 is the middle
    assert answers.likert_value(4.4, points=7) == {"winner": 1, "strength": 1}
    assert answers.likert_value(6.0, points=7) == {"winner": 1, "strength": 3}
    # 4 points (no middle): exactly between -> undecided; 1.4 -> index 1 -> c0 by 1; 2.0 -> c1 by 1.
    assert answers.likert_value(1.5, points=4) is None
    assert answers.likert_value(1.4, points=4) == {"winner": 0, "strength": 1}
    assert answers.likert_value(2.0, points=4) == {"winner": 1, "strength": 1}
    # Ratings: expectation over the scale, rounded and kept inside it.
    assert answers.rating_expected([1, 0, 1], low=1) == pytest.approx(2.0)
    assert answers.rating_value([2.5, 0.2, 9.0, 3.49], low=1, high=5) == {"scores": [3, 1, 5, 3]}


def test_it_ranks_by_expected_pairwise_wins():
    # P(0>1) 0.9, P(0>2) 0.8, P(1>2) 0.3. Wins: 0 -> 1.7; 1 -> 0.1 + 0.3 = 0.4; 2 -> 0.2 + 0.7 = 0.9.
    assert answers.ranking_value(3, {(0, 1): 0.9, (0, 2): 0.8, (1, 2): 0.3}, allow_ties=False) == {"ranking": [[0], [2], [1]]}
    # All even: one tier where ties are allowed, undecided where they are not.
    even = {(0, 1): 0.5, (0, 2): 0.5, (1, 2): 0.5}
    assert answers.ranking_value(3, even, allow_ties=True) == {"ranking": [[0, 1, 2]]}
    assert answers.ranking_value(3, even, allow_ties=False) is None
    assert answers.pairs_of(3) == [(0, 1), (0, 2), (1, 2)]


def test_it_tallies_the_position_bias_over_a_job_and_resumes_it():
    tally = answers.BiasTally()
    tally.add(answers.PairVerdict(p=0.5, p_first=0.9, flipped=True))
    tally.add(answers.PairVerdict(p=0.8, p_first=0.6, flipped=False))
    tally.count({"winner": 0})
    tally.count({"winner": 0})
    tally.count({"scores": [3, 4]})
    tally.add(answers.PairVerdict(p=0.5, p_first=0.5, flipped=False))
    tally.count({"winner": 1, "strength": 2})
    tally.count(None)
    tally.count({"ranking": [[0], [1]]})
    again = answers.BiasTally.from_dict(tally.as_dict())
    assert again.as_dict() == tally.as_dict()
    out = again.as_dict()
    # Three pairs: first-shown share (0.9 + 0.6 + 0.5) / 3 = 0.66667 -> 0.6667 (4 places); flips 1/3 -> 0.3333.
    assert out["pairs"] == 3 and out["first_position_share"] == 0.6667 and out["order_flip_share"] == 0.3333
    assert out["answers"] == {"0": 2, "1:2": 1, "undecided": 1, "ranking": 1, "rating": 1}
    assert answers.BiasTally().as_dict()["first_position_share"] is None
    # A job that never stored a tally starts from zero.
    assert answers.BiasTally.from_dict(None).as_dict() == answers.BiasTally.from_dict({}).as_dict() == answers.BiasTally().as_dict()
    assert answers.BiasTally().as_dict() == {"first_sum": 0.0, "pairs": 0, "flipped": 0, "answers": {}, "first_position_share": None,
                                             "order_flip_share": None}


def _judge_with(template: str | None, *, eos: bool = True, max_length: int = 2048):
    """An LMJudge on the judge tokenizer with another chat template (the network is never called)."""
    from tests.training.judge_models import judge_tokenizer
    from training.judge.judges import LMJudge

    tok = judge_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<|end|>"]})
    if template is not None:
        tok.chat_template = template
    if not eos:
        tok.eos_token = None
    judge = LMJudge.__new__(LMJudge)
    judge._ready(net=None, tokenizer=tok, device="cpu", max_length=max_length)
    return judge


END_OF_TURN = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}{% if m['role'] == 'assistant' %} <|end|> {% endif %}{% endfor %}"
               "{% if add_generation_prompt %}<|assistant|> {% endif %}")
NO_SYSTEM = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system turn') }}{% endif %}"
             "<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}")

NO_ANSWER = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{{ raise_exception('no answers') }}{% endif %}"
             "<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}")


def test_it_ends_each_option_with_the_templates_own_end_of_turn_token():
    # SmolLM2-style: the template writes a special token after an answer, which is not the EOS.
    judge = _judge_with(END_OF_TURN)
    end = judge.tokenizer.convert_tokens_to_ids("<|end|>")
    assert end != judge.tokenizer.eos_token_id and judge.end_id() == end
    assert judge.option_ids(["a", "b"]) == [[judge.tokenizer.convert_tokens_to_ids("a"), end], [judge.tokenizer.convert_tokens_to_ids("b"), end]]
    # A template that writes plain text after an answer (here: nothing special): the EOS ends it.
    assert _judge_with(NO_SYSTEM).end_id() == judge.tokenizer.eos_token_id
    # Neither: no way to mark the end of an answer, said in words.
    with pytest.raises(JudgeError, match="^model: its tokenizer has no end-of-turn or EOS token"):
        _judge_with(NO_SYSTEM, eos=False).end_id()
    # A template that cannot render an answer at all: the EOS.
    assert _judge_with(NO_ANSWER).end_id() == judge.tokenizer.eos_token_id


def test_it_asks_in_the_models_chat_format_and_keeps_the_end_of_a_long_prompt():
    judge = _judge_with(END_OF_TURN)
    tok = judge.tokenizer
    assert tok.decode(judge.context_ids("follow instructions", "which is better")) == "<|system|> follow instructions <|user|> which is better <|assistant|>"
    # A template that refuses a system turn: the instructions go first in the user's turn.
    folded = _judge_with(NO_SYSTEM)
    assert folded.tokenizer.decode(folded.context_ids("follow instructions", "which is better")) == "<|user|> follow instructions which is better <|assistant|>"
    # Too long: the start goes, the question and the start of the answer stay.
    short = _judge_with(END_OF_TURN, max_length=3)
    assert tok.decode(short.context_ids("follow instructions", "which is better")) == "is better <|assistant|>"
