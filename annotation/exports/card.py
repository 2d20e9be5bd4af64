"""The dataset card (README.md): what the snapshot holds, how it was collected, the instructions
raters saw, counts, agreement, and how to load it. Written for a stranger who only has the folder."""
from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings

from annotation import hooks, questions
from annotation.exports.split import SPLIT_RULE
from annotation.kinds import Kind

log = logging.getLogger(__name__)

KIND_TEXT = {
    Kind.BINARY: "raters saw two responses side by side (in random order) and picked the better one"
    " (or 'tie' / 'both bad' where allowed)",
    Kind.LIKERT: "raters saw two responses and said which is better and by how much on a symmetric scale;"
    " the strength becomes `margin`",
    Kind.RANKING: "raters ordered several responses from best to worst; every pair becomes a preference with"
    " the rank distance as `margin`",
    Kind.RATING: "raters scored each response on its own; the score threshold gives good/bad labels, and"
    " responses of one prompt whose scores differ become pairs (score difference as `margin`)",
}

FORMAT_TEXT = {
    "preference": "`prompt`, `chosen`, `rejected`{margin} — for TRL `RewardTrainer` and `DPOTrainer`",
    "unpaired": "`prompt`, `completion`, `label` (true = desirable) — for TRL `KTOTrainer`",
    "sft": "`prompt`, `completion`, `source` (`agreed_best`: the best response, only where raters agree;"
    " `written`: a response a rater wrote; `rewrite`: a rater's edit of a candidate) — for TRL `SFTTrainer`",
    "prompts": "`prompt` — every item's prompt once, judged or not (prompt sets too) — for online RL: PPO, RLOO, GRPO",
    "judgments": "every raw judgment: item id, prompt, candidates, `value` (the canonical answer as JSON text),"
    " pseudonymous `rater`, `source`, `display_order` (on-screen order), `duration_ms`, `rationale`, `created_at`,"
    " `version` and `latest` (a changed answer keeps every version; only the latest feeds the other formats),"
    " `answers` (the answers to the project's questions as JSON text, candidates by position)",
    "attributes": "`prompt`, `response`, the mean of each per-response scale question, then `<key>_count` (the answers"
    " behind each mean), `item_id`, `position`, `model` — HelpSteer2's layout, for a multi-objective reward model",
    "labels": "`prompt`, `response` (null for a question about the whole item), `question`, `label`, `count` (raters who"
    " chose it), `of` (raters who answered), `item_id`, `position` — per-label counts of the multi-label questions",
}


# Above this many judgments the card skips the project-wide agreement statistics: they hold every
# judgment in memory (built for 100k judgments in under 5 s), while the build itself must stay
# flat in memory at any size. Above it the card points to the quality page.
AGREEMENT_MAX_JUDGMENTS = 100_000
AGREEMENT_FIELDS = ("level", "alpha", "fleiss_kappa", "mean_cohen_kappa", "consensus_agreement", "gold_accuracy", "first_card_share")


def project_agreement(project) -> dict[str, Any] | None:
    """Agreement figures from the quality module (annotation.quality.figures / annotation.quality.agreement), when
    it exists and answers; the card must never fail because a statistic could not be computed."""
    from annotation.models import Judgment

    limit = getattr(settings, "ARBITER_CARD_AGREEMENT_MAX", AGREEMENT_MAX_JUDGMENTS)
    if Judgment.objects.filter(project=project).count() > limit:
        return {"note": f"more than {limit:,} judgments: see the project's quality page"}
    try:
        from annotation.quality.figures import project_quality
    except ImportError:
        return None
    try:
        summary = project_quality(project=project).get("summary") or {}
    except Exception:
        log.warning("agreement figures for %s failed", project.slug, exc_info=True)
        return None
    return {k: summary[k] for k in AGREEMENT_FIELDS if summary.get(k) is not None} or None


def _rows_by_source(stats: dict) -> str:
    rows = stats.get("preference_rows_by_source") or {}
    if not rows:
        return "none"
    return ", ".join(f"{k}: {v}" for k, v in rows.items()) + (" (a+b: the item's consensus combined both sources)" if any("+" in k for k in rows) else "")


def ai_agreement_lines(projects, options) -> list[str]:
    """AI–human agreement (annotation.quality.ai_agreement) for every judge whose labels may be in the
    snapshot: the reader must know how far the AI labels agree with people before training on them."""
    if "ai" not in options.sources:
        return []
    from annotation.quality.ai_agreement import project_ai_agreement

    lines = ["", "## AI labels and their agreement with the raters", ""]
    any_judge = False
    for project in projects:
        try:
            figures = project_ai_agreement(project=project)
        except Exception:  # a statistic is optional on the card
            log.warning("AI agreement for %s failed", project.slug, exc_info=True)
            continue
        for judge in figures.get("judges", []):
            any_judge = True
            c = judge["vs_consensus"]
            k_ci = f" [{c['kappa_ci'][0]}, {c['kappa_ci'][1]}]" if c.get("kappa_ci") else ""
            a_ci = f" [{c['agreement_ci'][0]}, {c['agreement_ci'][1]}]" if c.get("agreement_ci") else ""
            lines.append(
                f"- {project.slug}: AI judge `{judge['ai_model']}` (template `{judge['ai_template']}`), {judge['ai_judgments']} judgments;"
                f" against the human consensus on {c['units']} unit(s) of {c['items']} item(s): raw agreement {c['agreement']}{a_ci},"
                f" Cohen's kappa {c['kappa']}{k_ci} (95% bootstrap intervals over items)"
            )
    if not any_judge:
        lines.append("- no AI judgments in these projects")
    return lines


def _scalars(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float, str)):
            out.append((name, round(value, 4) if isinstance(value, float) else value))
        elif isinstance(value, dict) and not prefix:
            out.extend(_scalars(value, f"{name}."))
    return out[:30]


# Markdown's and HTML's special characters in a name, escaped so the card shows the name as
# typed: unescaped, "R&amp;D" rendered as "R&D" and "*beta*" as italics.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def _name(text: str) -> str:
    """A user-chosen name as literal text inside the card's Markdown."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip().splitlines()) or "> (none)"


def question_lines(projects) -> list[str]:
    """Each question a project asked beside its judgment (annotation.questions), with its help."""
    asking = [p for p in projects if questions.declared(p)]
    if not asking:
        return []
    lines = ["", "## Questions raters answered beside the judgment", ""]
    for project in asking:
        if len(projects) > 1:
            lines.append(f"{_name(project.name)}:")
        for q in questions.declared(project):
            help_text = f" — {_name(q['help'])}" if q.get("help") else ""
            lines.append(f"- {_name(questions.describe(q))} (raters saw “{_name(q['label'])}”){help_text}")
    lines += ["", "Per-response scale questions are averaged in `attributes/`; multi-label questions are counted in `labels/`;"
              " per-item scales and text answers are in `judgments/` (`answers`) only."]
    return lines


def render_card(*, snapshot, projects, options, counts, stats, chat: bool, with_margin: bool) -> str:
    name = f"{snapshot.project.slug}-v{snapshot.version}"
    lines = [
        f"# {name}",
        "",
        f"A preference dataset built by Arbiter from human{' and AI' if 'ai' in options.sources else ''} judgments of LLM"
        f" responses in the project{'s' if len(projects) > 1 else ''} {', '.join(f'**{_name(p.name)}** (`{p.slug}`)' for p in projects)}.",
        f"Snapshot version {snapshot.version}, created {snapshot.created_at:%Y-%m-%d %H:%M} UTC"
        f"{' by ' + snapshot.created_by.username if snapshot.created_by_id else ''}. It is immutable: `manifest.json` lists the"
        " sha256 of every file.",
        "",
        "## What it holds",
        "",
        "| format | train | test | columns |",
        "|---|---:|---:|---|",
    ]
    methods = hooks.format_readers()
    for fmt, split_counts in counts.items():
        columns = FORMAT_TEXT[fmt].format(margin=", `margin`" if with_margin else "")
        lines.append(f"| `{fmt}/` | {split_counts['train']} | {split_counts['test']} | {columns} |")
    readers = [f"`{fmt}/`: {', '.join(methods[fmt])}" for fmt in counts if methods.get(fmt)]
    if readers:
        lines += ["", "Arbiter trains from these files as a researcher would (each training method reads one format): "
                  + "; ".join(readers) + "."]
    lines += [
        "",
        f"Prompts are {'in TRL conversational form (lists of `{role, content}` messages; responses are one assistant message)' if chat else 'plain text'}."
        " Every format comes as `train.jsonl`/`test.jsonl` and `train.parquet`/`test.parquet`.",
        SPLIT_RULE.format(seed=options.seed, test_share=options.test_share),
        "",
        "## How it was collected",
        "",
    ]
    for project in projects:
        lines.append(f"- **{_name(project.name)}**: {project.kind} judgments — {KIND_TEXT.get(project.kind, project.kind)}."
                     f" Up to {project.overlap} rater(s) per item; candidates were shown in a random order per rater.")
    lines += [
        "",
        f"Judgments counted: {', '.join(options.sources)} (\"import\" = judgments that came with the imported items)."
        f" Paused raters (failed gold checks or paused by a manager) {'left out' if options.exclude_paused else 'included'};"
        f" gold items {'kept' if options.keep_gold else 'left out'}; ties {'kept as votes' if options.keep_ties else 'dropped'};"
        f" 'both bad' {'kept (two negatives in unpaired)' if options.keep_both_bad else 'dropped'}.",
        f"Combining several judgments of one item: **{options.aggregation}**"
        + {
            "none": " (every judgment gives its own rows).",
            "majority": " (majority vote; an even split gives no row).",
            "dawid_skene": " (Dawid–Skene from crowd-kit weights raters by their estimated reliability for the winner).",
        }.get(options.aggregation, ".")
        + f" Minimum agreement with the consensus: {options.min_agreement}; SFT rows need {options.sft_min_agreement}.",
        f"Adjudicated answers: {'used where a manager set one (they replace the raters’ judgments of that item)' if options.use_adjudicated else 'not used'}."
        f" Demonstrations raters wrote: {'kept (sft rows; a rewrite also gives the pair rewrite > original in preference)' if options.keep_demonstrations else 'left out'}.",
        "",
        "## Counts",
        "",
        f"- judgments: {stats['total']} ({', '.join(f'{k}: {v}' for k, v in sorted(stats['per_kind'].items())) or 'none'})",
        f"- by source: {', '.join(f'{k}: {v}' for k, v in sorted(stats['per_source'].items())) or 'none'}",
        f"- preference rows by source of their answer: {_rows_by_source(stats)}",
        f"- items: {stats['items']}; with several judgments: {stats['items_with_several_judgments']}",
        f"- raters (pseudonymous): {stats['raters']}",
        f"- items adjudicated by a manager and used: {stats.get('items_adjudicated', 0)}",
        f"- judgments changed by their rater (earlier versions in `judgments/` only): {stats.get('judgments_changed', 0)}",
        "- demonstrations: {written} written, {rewrite} rewrites".format(**stats.get("demonstrations", {"written": 0, "rewrite": 0})),
        "",
        "## Agreement",
        "",
    ]
    if stats["mean_agreement_with_consensus"] is not None:
        lines.append(f"- mean share of judgments agreeing with the item consensus: {stats['mean_agreement_with_consensus']}")
    else:
        lines.append("- no item has more than one judgment, so agreement cannot be measured")
    lines.append(f"- items split evenly (no consensus): {stats['items_split_evenly']}; below the minimum agreement: {stats['items_below_min_agreement']}")
    for project in projects:
        figures = project_agreement(project)
        if figures:
            lines.append(f"- {project.slug} (raters against each other, from the quality page): "
                         + ", ".join(f"{k} = {v}" for k, v in _scalars(figures)))
    lines += ai_agreement_lines(projects, options)
    lines += question_lines(projects)
    lines += ["", "## Instructions raters saw", ""]
    for project in projects:
        if len(projects) > 1:
            lines += [f"### {_name(project.name)}", ""]
        lines += [_quote(project.instructions or "(no instructions)"), ""]
    lines += [
        "## How to load it",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'files = {"train": "preference/train.jsonl", "test": "preference/test.jsonl"}',
        'preference = load_dataset("json", data_files=files)  # or "parquet" with the .parquet files',
        "",
        "from trl import DPOConfig, DPOTrainer  # RewardTrainer reads the same files",
        'trainer = DPOTrainer(model=model, args=DPOConfig(output_dir="out"), train_dataset=preference["train"],',
        "                     processing_class=tokenizer)",
        "trainer.train()",
        "",
        '# unpaired/ -> KTOTrainer, sft/ -> SFTTrainer, the same way.',
        "```",
        "",
        "Rater ids in `judgments/` are salted hashes that change with every snapshot; they cannot be linked to people.",
        "",
    ]
    return "\n".join(lines)
