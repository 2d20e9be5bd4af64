/* The project's questions on the labelling page (annotation/questions.py; label.js uses this).
 * Each question is a div[data-question][data-key][data-type][data-per][data-field] (+ data-position
 * under a response card) of plain form fields named q_<key>[_<position>]: the very fields the page
 * posts without JavaScript (annotation.questions.answers_from_form). These functions read them for
 * one item's state `s` = {form, cards, questions (the form's data-questions)}: the answers in
 * canonical form (by position), what a required question still lacks, and the page's marks. */
(function () {
  "use strict";

  function groups(s) {
    return Array.prototype.slice.call(s.form.querySelectorAll("[data-question]"));
  }

  function positions(s) {
    return s.cards.map(function (c) { return Number(c.dataset.position); }).sort(function (a, b) { return a - b; });
  }

  function fieldName(q, position) {
    return position === undefined ? "q_" + q.key : "q_" + q.key + "_" + position;
  }

  function inputs(s, name) {
    return Array.prototype.slice.call(s.form.querySelectorAll('[name="' + CSS.escape(name) + '"]'));
  }

  // One field's answer: a scale's checked point (or null), the ticked labels, the text.
  function fieldAnswer(s, q, name) {
    var els = inputs(s, name);
    if (q.type === "scale") {
      var on = els.filter(function (el) { return el.checked; })[0];
      return on ? Number(on.value) : null;
    }
    if (q.type === "labels") return els.filter(function (el) { return el.checked; }).map(function (el) { return el.value; });
    return els.length ? els[0].value : "";
  }

  // The answers in canonical form (annotation/questions.py): per response, a list by position.
  function collectAnswers(s) {
    var answers = {};
    s.questions.forEach(function (q) {
      var value;
      if (q.per === "response") {
        value = positions(s).map(function (p) { return fieldAnswer(s, q, fieldName(q, p)); });
        if (q.type === "scale" && value.every(function (v) { return v === null; })) return;
      } else {
        value = fieldAnswer(s, q, fieldName(q));
        if (value === null || (q.type === "text" && !value.trim())) return;
      }
      answers[q.key] = value;
    });
    return answers;
  }

  // What a required question still lacks, in words: "Helpfulness (A, B)". Labels always have
  // an answer (none ticked: none apply), as in the form without JavaScript.
  function missing(s) {
    var out = [];
    s.questions.forEach(function (q) {
      if (!q.required || q.type === "labels") return;
      if (q.per === "response") {
        var lacking = s.cards.filter(function (card) { return fieldAnswer(s, q, fieldName(q, card.dataset.position)) === null; })
          .map(function (card) { return card.dataset.label; });
        if (lacking.length) out.push({ key: q.key, text: q.label + " (" + lacking.join(", ") + ")" });
      } else {
        var v = fieldAnswer(s, q, fieldName(q));
        if (v === null || (q.type === "text" && !v.trim())) out.push({ key: q.key, text: q.label });
      }
    });
    return out;
  }

  function firstMissingGroup(s) {
    return groups(s).filter(function (g) {
      if (g.dataset.type === "labels") return false;
      var q = s.questions.filter(function (x) { return x.key === g.dataset.key; })[0];
      if (!q || !q.required) return false;
      var v = fieldAnswer(s, q, g.dataset.field);
      return v === null || (q.type === "text" && !v.trim());
    })[0];
  }

  function paintQuestions(s) {
    if (!s.questions.length) return;
    groups(s).forEach(function (g) {
      var q = s.questions.filter(function (x) { return x.key === g.dataset.key; })[0];
      var v = q ? fieldAnswer(s, q, g.dataset.field) : null;
      g.classList.toggle("answered", v !== null && !(q && q.type === "text" && !v.trim()));
    });
    var lack = missing(s);
    var text = lack.length ? "To answer: " + lack.map(function (m) { return m.text; }).join("; ") : "";
    var button = s.form.querySelector("[data-action=submit]");
    button.disabled = lack.length > 0;
    button.title = text || "Submit (Enter)";
    var note = s.form.querySelector("[data-missing]");
    if (note) { note.textContent = text; note.title = text ? text + " — go to the first (Q)" : ""; note.hidden = !text; }
  }

  function focusGroup(group) {
    if (!group) return;
    var field = group.querySelector("input:checked") || group.querySelector("input, textarea");
    if (!field) return;
    field.focus({ preventScroll: true });
    // Into view where the page scrolls (a phone); on a laptop the questions are already on screen.
    group.scrollIntoView({ block: "nearest" });
  }

  window.arbiterQuestions = {
    groups: groups, collect: collectAnswers, missing: missing, firstMissing: firstMissingGroup, paint: paintQuestions, focus: focusGroup
  };
})();
