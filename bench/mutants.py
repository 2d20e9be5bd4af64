"""Named mutants of the learning code (issue 19): each is a defect we once had or feared, written
as one exact source replacement, with the tests that must catch it. For each mutant the script
applies the replacement to a scratch copy of the tree, runs those tests (pytest -x) and prints

    KILLED|SURVIVED name (tests, seconds)
    ...
    killed K of N

Exit status 0 when every mutant is killed, 1 when one survives (or errs), 2 when the unmutated
tests fail (a mutant "killed" by a test that fails anyway proves nothing) or a snippet is not
found exactly once (the code moved: re-anchor the mutant, do not drop it).

    .venv/bin/python bench/mutants.py               # all, after a baseline run of their tests
    .venv/bin/python bench/mutants.py --list
    .venv/bin/python bench/mutants.py --only ppo-whitening-off --only dpo-beta-ignored

The scratch copy leaves out .git, .venv, caches and data folders, and links the project's .venv.
Python writes no bytecode there (PYTHONDONTWRITEBYTECODE), so a mutated file is always compiled
afresh. Stdlib only: the tests run in their own process, as CI runs them.

The wider, blind sweep is mutmut (docs/benchmarks.md); this list is the one a reviewer reads.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LM = "tests/training/test_learning_mutations.py"
MATH = "tests/training/test_ppo_math.py"
JUDGE = "tests/training/test_judge.py"
SCORING = "tests/training/test_judge_scoring.py"  # the same arithmetic without a database: fails first


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    snippet: str  # must occur exactly once in `file`
    replacement: str
    tests: tuple[str, ...]  # pytest node ids; one failing test kills the mutant


# Snippets are short and sit on the maths (training/rl/ppo.py), the judge's orientation and scoring,
# and the recipes' loss wiring, so that edits around them leave them findable.
MUTANTS = (
    Mutant("ppo-kl-coef-ignored", "training/rl/ppo.py",
           "rmask, self.kl_ctl.value)", "rmask, 0.0)",
           (f"{LM}::test_it_charges_kl_coef_times_the_k1_kl_at_every_token", f"{LM}::test_it_scales_the_penalty_with_kl_coef")),
    Mutant("ppo-kl-sign-flipped-in-reward", "training/rl/ppo.py",
           "rewards = -kl_coef * kl * mask", "rewards = kl_coef * kl * mask",
           (f"{MATH}::test_it_puts_the_kl_penalty_on_every_token_and_the_score_on_the_last_one",
            f"{LM}::test_it_charges_kl_coef_times_the_k1_kl_at_every_token")),
    Mutant("ppo-kl-sign-flipped-in-estimate", "training/rl/ppo.py",
           "log_ratio = logprobs - ref_logprobs", "log_ratio = ref_logprobs - logprobs",
           (f"{MATH}::test_it_estimates_kl_with_k1_and_k3", f"{LM}::test_it_charges_kl_coef_times_the_k1_kl_at_every_token")),
    Mutant("ppo-k3-replaced-by-k1-in-loop", "training/rl/ppo.py",
           "kl_per_token(logprobs, ref_logprobs, cfg.kl_estimator)", 'kl_per_token(logprobs, ref_logprobs, "k1")',
           (f"{LM}::test_it_uses_the_k3_estimator_inside_the_loop_when_asked",)),
    Mutant("ppo-missing-eos-penalty-off", "training/rl/ppo.py",
           "normalised - self.cfg.missing_eos_penalty * (~ended).float()", "normalised",
           (f"{MATH}::test_it_takes_the_missing_eos_penalty_off_the_reward_of_a_response_that_never_ends",
            f"{LM}::test_it_charges_kl_coef_times_the_k1_kl_at_every_token")),
    Mutant("ppo-reward-normalisation-off", "training/rl/ppo.py",
           "if not self.cfg.normalize_reward:", "if True:",
           (f"{LM}::test_it_normalises_the_score_with_the_references_samples_at_the_start",)),
    Mutant("ppo-whitening-off", "training/rl/ppo.py",
           "if cfg.whiten_rewards:", "if False:",
           (f"{LM}::test_it_whitens_the_token_rewards_when_asked_and_keeps_their_mean",)),
    Mutant("ppo-critic-init-policy-head-not-zeroed", "training/rl/models.py",
           "p.zero_()", "p.mul_(1.0)",
           (f"{LM}::test_it_starts_a_policy_initialised_critic_from_the_policys_backbone_with_zero_values",)),
    Mutant("ppo-critic-init-policy-takes-reward-model", "training/recipes/ppo.py",
           "critic_net = M.critic_from_policy(ctx.base_model_path", "critic_net = copy.deepcopy(rm_net); M.critic_from_policy(ctx.base_model_path",
           (f"{LM}::test_it_starts_a_policy_initialised_critic_from_the_policys_backbone_with_zero_values",)),
    Mutant("rloo-grpo-beta-dropped", "training/recipes/online.py",
           "if f.name not in shared}", 'if f.name not in shared | {"beta"}}',
           ("tests/training/test_rloo_grpo.py::test_it_hands_the_runs_own_kl_coefficient_to_trl",)),
    Mutant("judge-pair-orientation-reversed", "training/judge/answers.py",
           "p = (q1[0] + q2[1]) / 2.0", "p = (q1[1] + q2[0]) / 2.0",
           (f"{SCORING}::test_it_orients_a_pair_asked_in_both_orders", f"{JUDGE}::test_it_gives_the_win_to_the_response_a_judge_prefers_wherever_it_was_shown",)),
    Mutant("judge-likert-orientation-reversed", "training/judge/answers.py",
           "zip(q1, reversed(q2))", "zip(reversed(q1), q2)",
           (f"{SCORING}::test_it_orients_likert_answers_asked_in_both_orders", f"{JUDGE}::test_it_gives_the_win_to_the_response_a_judge_prefers_wherever_it_was_shown",)),
    Mutant("judge-ranking-orientation-reversed", "training/judge/answers.py",
           "wins[i] += p\n        wins[j] += 1.0 - p", "wins[i] += 1.0 - p\n        wins[j] += p",
           (f"{SCORING}::test_it_ranks_by_expected_pairwise_wins", f"{JUDGE}::test_it_gives_the_win_to_the_response_a_judge_prefers_wherever_it_was_shown",)),
    Mutant("judge-option-prefix-bias", "training/judge/judges.py",
           "self._option_ids[key] = [i + [end] for i in ids]", "self._option_ids[key] = [i for i in ids]",
           (f"{SCORING}::test_it_gives_each_option_the_probability_of_its_tokens_then_the_end_of_the_turn", f"{JUDGE}::test_it_scores_each_option_as_a_complete_answer_so_a_judge_that_means_10_says_10",)),
    Mutant("sft-prompt-not-masked", "training/recipes/sft.py",
           '"completion_only_loss": cfg.completion_only_loss,', '"completion_only_loss": False,',
           ("tests/training/test_sft.py::test_it_computes_the_loss_on_the_completion_tokens_only",)),
    Mutant("dpo-beta-ignored", "training/recipes/dpo.py",
           '"beta": cfg.beta,', '"beta": 0.1,',
           (f"{LM}::test_it_hands_the_runs_dpo_beta_to_the_loss",)),
    Mutant("kto-weights-swapped", "training/recipes/kto.py",
           '"desirable_weight": cfg.desirable_weight,\n            "undesirable_weight": cfg.undesirable_weight,',
           '"desirable_weight": cfg.undesirable_weight,\n            "undesirable_weight": cfg.desirable_weight,',
           (f"{LM}::test_it_weighs_the_kto_loss_of_desirable_and_undesirable_rows_as_set",)),
    Mutant("reward-model-margin-ignored", "training/recipes/reward.py",
           "if not cfg.use_margin:", "if True:",
           (f"{LM}::test_it_puts_the_preference_margin_into_the_reward_models_loss",)),
)

SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", "var", "out", "node_modules", "*.pyc", "*.sqlite3*")


def check_anchors(mutants) -> None:
    """Every snippet exactly once, before anything runs: a moved snippet is an error, not a survivor."""
    bad = []
    for m in mutants:
        count = (ROOT / m.file).read_text().count(m.snippet)
        if count != 1:
            bad.append(f"{m.name}: {m.snippet!r} occurs {count} times in {m.file} (must be once: re-anchor it)")
    if bad:
        sys.exit("mutants.py: " + "\n  ".join(["snippets not found exactly once:", *bad]))


def scratch_tree(parent: Path) -> Path:
    tree = parent / "tree"
    shutil.copytree(ROOT, tree, ignore=SKIP, symlinks=True)
    os.symlink(ROOT / ".venv", tree / ".venv")
    return tree


def run_tests(tree: Path, tests, timeout: float) -> tuple[int | None, float, str]:
    """pytest -x on `tests` in `tree`: (exit status or None on timeout, seconds, output tail)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "ARBITER_DATA_DIR": tempfile.mkdtemp(prefix="mutant-data-")}
    cmd = ["nice", str(tree / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        return done.returncode, time.perf_counter() - started, (done.stdout + done.stderr)[-3000:]
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - started, ""
    finally:
        shutil.rmtree(env["ARBITER_DATA_DIR"], ignore_errors=True)


def short(tests) -> str:
    return ", ".join(t.rsplit("/", 1)[-1] for t in tests)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run this mutant only (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the mutants and the tests named for each, run nothing")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated tests")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per test run (a timeout counts as not killed)")
    args = parser.parse_args(argv)

    names = {m.name for m in MUTANTS}
    unknown = [n for n in args.only if n not in names]
    if unknown:
        parser.error(f"--only: unknown mutant(s) {', '.join(unknown)}; --list shows them")
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name}  {m.file}: {m.snippet!r} -> {m.replacement!r}\n    {short(m.tests)}")
        return 0
    check_anchors(chosen)

    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        tree = scratch_tree(Path(scratch))
        if not args.no_baseline:
            baseline = list(dict.fromkeys(t for m in chosen for t in m.tests))
            status, seconds, tail = run_tests(tree, baseline, args.timeout)
            if status != 0:
                print(tail, file=sys.stderr)
                print(f"baseline: the unmutated tests do not pass (exit {status}, {seconds:.0f}s); no mutant can be judged", file=sys.stderr)
                return 2
            print(f"baseline: {len(baseline)} tests pass unmutated ({seconds:.0f}s)", flush=True)
        killed = 0
        for m in chosen:
            path = tree / m.file
            original = path.read_text()
            path.write_text(original.replace(m.snippet, m.replacement, 1))
            try:
                status, seconds, tail = run_tests(tree, m.tests, args.timeout)
            finally:
                path.write_text(original)
            # 1: a test failed; 2: collection failed because of the mutant (the baseline collected fine).
            verdict = {0: "SURVIVED", 1: "KILLED", 2: "KILLED"}.get(status, "TIMEOUT" if status is None else f"ERROR(exit {status})")
            killed += verdict == "KILLED"
            print(f"{verdict} {m.name} ({short(m.tests)}, {seconds:.0f}s)", flush=True)
            if verdict.startswith("ERROR"):
                print(tail, file=sys.stderr)
        print(f"killed {killed} of {len(chosen)}")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
