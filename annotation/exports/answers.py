"""The answers to a project's questions (annotation.questions) as export rows.

- attributes/: one row per (prompt, response) with at least one scale answer, in HelpSteer2's
  column layout: prompt, response, the mean of every per-response scale question (null where no
  rater answered it), then `<key>_count` (how many answers each mean is over), then item_id,
  position and model. A multi-objective reward model reads this file as it reads HelpSteer2.
- labels/: one row per (prompt, response or null, question, label) of the multi-label questions:
  `count` raters chose the label out of `of` raters who answered the question there. Every
  declared label gets a row (count 0 included), so a reader gets rates, not only hits.

Only the judgments that count for the snapshot contribute (its sources, paused raters, gold
items, ties and 'both bad' as the options say; the latest version of a changed answer). The
primary consensus (majority, minimum agreement) does not filter them: a mean needs no winner.

Per-item scale questions are not in attributes/: a row there describes one response, and a
score of the whole item repeated on every response would read as the response's. Their answers
stay in judgments/ (`answers`), where nothing is averaged away.
"""
from __future__ import annotations

from annotation import questions
from annotation.exports.formats import encode
from annotation.exports.options import QUESTION_FORMATS


class AnswerRows:
    """What a snapshot's projects ask, gathered once per build, and the rows of one item."""

    def __init__(self, projects):
        keys: list[str] = []
        self.scales: dict[int, list[str]] = {}
        self.labels: dict[int, list[dict]] = {}
        for project in projects:
            per_response = [q["key"] for q in questions.scale_questions(project) if q["per"] == questions.PER_RESPONSE]
            self.scales[project.id] = per_response
            # One column per key across projects: the same key in two projects is one attribute.
            keys += [k for k in per_response if k not in keys]
            self.labels[project.id] = questions.label_questions(project)
        self.keys = tuple(keys)
        self.formats = tuple(
            fmt for fmt, wanted in zip(QUESTION_FORMATS, (bool(self.keys), any(self.labels.values()))) if wanted
        )

    def write_item(self, writer, split: str, *, project_id: int, prompt_json: str, item_id_json: str, cands: dict, answers: list[dict]) -> None:
        """The attributes and labels rows of one item, from the answers of its judgments that count."""
        if not answers:
            return
        if self.keys and self.scales.get(project_id):
            self._attributes(writer, split, project_id, prompt_json, item_id_json, cands, answers)
        for q in self.labels.get(project_id, ()):
            self._labels(writer, split, q, prompt_json, item_id_json, cands, answers)

    def _attributes(self, writer, split, project_id, prompt_json, item_id_json, cands, answers) -> None:
        asked = set(self.scales[project_id])
        for position, (text, model) in sorted(cands.items()):
            means, counts = [], []
            for key in self.keys:
                scores = []
                if key in asked:
                    for a in answers:
                        given = a.get(key)
                        if isinstance(given, list) and position < len(given) and isinstance(given[position], int | float):
                            scores.append(given[position])
                means.append(repr(float(sum(scores) / len(scores))) if scores else "null")
                counts.append(str(len(scores)))
            if not any(n != "0" for n in counts):
                continue
            columns = [f'"prompt": {prompt_json}', f'"response": {encode(text)}']
            columns += [f'"{key}": {mean}' for key, mean in zip(self.keys, means)]
            columns += [f'"{key}_count": {n}' for key, n in zip(self.keys, counts)]
            columns += [f'"item_id": {item_id_json}', f'"position": {position}', f'"model": {encode(model or "")}']
            writer.line("attributes", split, "{" + ", ".join(columns) + "}\n")

    def _labels(self, writer, split, q, prompt_json, item_id_json, cands, answers) -> None:
        key = q["key"]
        if q["per"] == questions.PER_ITEM:
            targets = [(None, None, [a[key] for a in answers if isinstance(a.get(key), list)])]
        else:
            targets = []
            for position, (text, _) in sorted(cands.items()):
                chosen = [a[key][position] for a in answers if isinstance(a.get(key), list) and position < len(a[key])]
                targets.append((position, text, [c for c in chosen if isinstance(c, list)]))
        question_json = encode(key)
        for position, text, chosen in targets:
            if not chosen:
                continue
            response = "null" if text is None else encode(text)
            where = "null" if position is None else str(position)
            for label in q["choices"]:
                count = sum(1 for c in chosen if label in c)
                writer.line(
                    "labels", split,
                    f'{{"prompt": {prompt_json}, "response": {response}, "question": {question_json}, "label": {encode(label)}, '
                    f'"count": {count}, "of": {len(chosen)}, "item_id": {item_id_json}, "position": {where}}}\n',
                )
