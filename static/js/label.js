/* The labelling page: keyboard shortcuts, answers in canonical positions, and the next item
 * swapped in without a reload. Progressive enhancement: without this file the page is a plain
 * form that posts and redirects.
 *
 * Screen -> position: every card carries data-position (its candidate position) and every
 * choice button carries data-value (the canonical answer it stands for, computed by the server
 * from the assignment's display_order). This file only ever sends positions.
 *
 * Page structure (templates/annotation/label.html, _label_stage.html, _label_item.html):
 *   #label-app [data-allow-ties]
 *     header.label-head     title, progress ([data-progress=...]), details#instructions (? / I)
 *     #label-stage          swapped whole on every answer/skip (JSON "next".html)
 *       form.label-item [data-kind data-assignment data-submit-url data-skip-url]
 *         section.prompt
 *         section.candidates > article.candidate [data-position data-index data-label]
 *                                .candidate-head > [data-rank-badge] | [data-score-badge]
 *         div.drawers > div.drawer[data-drawer=NAME]   hidden until opened (class "open");
 *                                 "rationale" opens on R. A new drawer: add the div in
 *                                 _label_item.html, a key in onKey calling openDrawer(NAME),
 *                                 and (optional) a button [data-action=drawer][data-drawer-name=NAME].
 *         section.answer > .answer-controls   one row: [data-choice] buttons (binary/likert),
 *                                 [data-ranking-order] (ranking), fieldset[data-scores][data-position]
 *                                 per response (rating)
 *                        > .item-questions   the per-item questions (scale, labels, text)
 *                        > .actions  [data-status], [data-missing], drawer buttons, Skip, Submit
 *
 * Questions (annotation/questions.py; form data-questions lists them; static/js/label_questions.js, loaded first, reads them): each is a
 * div[data-question][data-key][data-type][data-per] (+ data-position under a response card) of plain
 * form fields named q_<key>[_<position>], the very fields the page posts without JavaScript. This
 * file collects them into the canonical `answers` (by position), keeps Submit disabled while a
 * required one is unanswered ([data-missing] names them), and gives them keys: Q / Shift+Q (or Tab)
 * move between questions, a digit sets the focused scale (then moves on) or toggles the focused
 * question's numbered label, Esc hands the digits back to the judgment.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");
  var app = document.getElementById("label-app");
  if (!app) return;
  var stage = document.getElementById("label-stage");
  var instructions = document.getElementById("instructions");
  var allowTies = app.dataset.allowTies === "true";
  var cur = null; // state of the item on screen

  function newClientKey() {
    // randomUUID needs a secure context; a plain-http deployment on a LAN address still has getRandomValues.
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function setup() {
    var form = stage.querySelector("form.label-item");
    if (!form) { cur = null; return; }
    cur = {
      form: form,
      kind: form.dataset.kind,
      cards: Array.prototype.slice.call(form.querySelectorAll(".candidate")),
      started: performance.now(),
      clientKey: newClientKey(),
      choice: null,        // binary/likert: the selected button
      ranking: [],         // ranking: tiers of card indexes (1-based, screen order), best first
      tieNext: false,      // ranking: the next placement joins the last tier
      current: 0,          // rating: index of the card the score keys apply to
      moved: false,        // rating: the current card changed by key; scroll it into view
      questions: JSON.parse(form.dataset.questions || "[]"),
      busy: false
    };
    // Required fields are checked here (naming what is missing); the browser's own check would
    // stop the form before label.js sees it. Without JavaScript the browser's check stays on.
    form.noValidate = true;
    // The turn being answered is in view on every item (static/js/prompt_end.js).
    if (window.arbiterShowLastTurn) window.arbiterShowLastTurn(form.querySelector(".prompt"));
    paint();
  }

  function status(text, isError) {
    if (!cur) return;
    var el = cur.form.querySelector("[data-status]");
    el.textContent = text || "";
    el.classList.toggle("error", !!isError);
  }

  function paint() {
    if (!cur) return;
    var form = cur.form;
    paintQuestions();
    form.querySelectorAll("[data-choice]").forEach(function (b) {
      b.classList.toggle("selected", b === cur.choice);
      b.setAttribute("aria-pressed", b === cur.choice ? "true" : "false");
    });
    if (cur.kind === "ranking") {
      var rankOf = {};
      cur.ranking.forEach(function (tier, i) { tier.forEach(function (idx) { rankOf[idx] = i + 1; }); });
      cur.cards.forEach(function (card) {
        var r = rankOf[card.dataset.index];
        card.classList.toggle("placed", !!r);
        card.querySelector("[data-rank-badge]").textContent = r ? "#" + r : "";
      });
      var list = form.querySelector("[data-ranking-order]");
      list.textContent = "";
      if (!cur.ranking.length) {
        var li0 = document.createElement("li");
        li0.className = "muted placeholder";
        li0.textContent = "press a response's number";
        list.appendChild(li0);
      }
      cur.ranking.forEach(function (tier) {
        var li = document.createElement("li");
        li.textContent = tier.map(function (idx) { return cur.cards[idx - 1].dataset.label; }).join(" = ");
        list.appendChild(li);
      });
      if (cur.tieNext) {
        var hint = document.createElement("li");
        hint.className = "muted placeholder";
        hint.textContent = "= … (tie with the last)";
        list.appendChild(hint);
      }
    }
    if (cur.kind === "rating") {
      cur.cards.forEach(function (card, i) {
        var checked = checkedScore(card);
        card.classList.toggle("current", i === cur.current && cur.cards.length > 1);
        card.classList.toggle("scored", !!checked);
        card.querySelector("[data-score-badge]").textContent = checked ? checked.value : "";
        scoresOf(card).classList.toggle("current", i === cur.current);
      });
      var active = cur.cards[cur.current];
      // The response the keys apply to is brought into view where the cards stack (phone).
      if (active && cur.cards.length > 1 && cur.moved) { active.scrollIntoView({ block: "nearest" }); cur.moved = false; }
    }
  }

  function choose(button) {
    cur.choice = button;
    // A phone shows the scale's keys only; the status names the point chosen.
    status(cur.kind === "likert" ? button.title : "");
    paint();
  }

  function place(index) {
    if (index < 1 || index > cur.cards.length) return;
    var placed = cur.ranking.some(function (tier) { return tier.indexOf(index) !== -1; });
    if (placed) { status("Response " + cur.cards[index - 1].dataset.label + " is already placed (Backspace undoes)", true); return; }
    if (cur.tieNext && cur.ranking.length) cur.ranking[cur.ranking.length - 1].push(index);
    else cur.ranking.push([index]);
    cur.tieNext = false;
    status("");
    paint();
  }

  function undo() {
    if (cur.tieNext) { cur.tieNext = false; paint(); return; }
    var last = cur.ranking[cur.ranking.length - 1];
    if (!last) return;
    last.pop();
    if (!last.length) cur.ranking.pop();
    status("");
    paint();
  }

  // Rating: each response's scale is a fieldset in the answer row, matched by data-position.
  function scoresOf(card) {
    return cur.form.querySelector('[data-scores][data-position="' + card.dataset.position + '"]');
  }

  function checkedScore(card) {
    var group = scoresOf(card);
    return group ? group.querySelector("input[type=radio]:checked") : null;
  }

  function score(key) {
    var card = cur.cards[cur.current];
    var radio = card && scoresOf(card).querySelector('input[type=radio][data-key="' + key + '"]');
    if (!radio) return false;
    radio.checked = true;
    // Move on to the next response still without a score, so 4 then 2 scores two responses.
    for (var step = 1; step <= cur.cards.length; step++) {
      var next = (cur.current + step) % cur.cards.length;
      if (!checkedScore(cur.cards[next])) { cur.current = next; break; }
    }
    status("");
    paint();
    return true;
  }

  // --- Questions (static/js/label_questions.js reads and marks them) --------------------------------

  var Q = window.arbiterQuestions;
  function groups() { return Q.groups(cur); }
  function collectAnswers() { return Q.collect(cur); }
  function missing() { return Q.missing(cur); }
  function firstMissingGroup() { return Q.firstMissing(cur); }
  function paintQuestions() { Q.paint(cur); }
  function focusGroup(group) { Q.focus(group); }

  function moveQuestion(from, step) {
    var all = groups();
    if (!all.length) return;
    var i = from ? all.indexOf(from) : -1;
    var next = i === -1 ? (step > 0 ? 0 : all.length - 1) : i + step;
    if (next < 0 || next >= all.length) { if (from) document.activeElement.blur(); status("Back to the judgment's keys"); return; }
    focusGroup(all[next]);
  }

  // A digit (or - =) inside a focused question: the scale's point, or toggle the numbered label.
  function answerKey(group, key) {
    var input = group.querySelector('input[data-point-key="' + CSS.escape(key) + '"]');
    if (!input) return false;
    if (input.type === "radio") {
      input.checked = true;
      paint();
      var all = groups();
      var i = all.indexOf(group);
      if (i + 1 < all.length) focusGroup(all[i + 1]);
      else { input.blur(); status(missing().length ? "" : "All questions answered — Enter submits"); }
    } else {
      input.checked = !input.checked;
      input.focus({ preventScroll: true });
      paint();
    }
    return true;
  }

  function valueOrError() {
    if (cur.kind === "binary" || cur.kind === "likert") {
      if (!cur.choice) return { error: "Choose an answer first" };
      return { value: JSON.parse(cur.choice.dataset.value) };
    }
    if (cur.kind === "ranking") {
      var tiers = cur.ranking.map(function (t) { return t.slice(); });
      var placed = [].concat.apply([], tiers);
      var left = cur.cards.filter(function (c) { return placed.indexOf(Number(c.dataset.index)) === -1; });
      if (left.length === 1) tiers.push([Number(left[0].dataset.index)]); // the last one left is last
      else if (left.length > 1) return { error: "Place every response (" + left.length + " left)" };
      return { value: { ranking: tiers.map(function (t) {
        return t.map(function (idx) { return Number(cur.cards[idx - 1].dataset.position); });
      }) } };
    }
    if (cur.kind === "rating") {
      var scores = [];
      for (var i = 0; i < cur.cards.length; i++) {
        var card = cur.cards[i];
        var checked = checkedScore(card);
        if (!checked) return { error: "Score response " + card.dataset.label + " first" };
        scores[Number(card.dataset.position)] = Number(checked.value);
      }
      return { value: { scores: scores } };
    }
    return { error: "Unknown judgment kind" };
  }

  function csrf() {
    var input = cur.form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function swap(next) {
    if (!next || typeof next.html !== "string") return;
    // The HTML comes from our own templates, with all untrusted text sanitised server-side.
    stage.innerHTML = next.html;
    if (next.progress) {
      app.querySelectorAll("[data-progress]").forEach(function (el) {
        var v = next.progress[el.dataset.progress];
        if (v !== undefined) el.textContent = v;
      });
    }
    setup();
    window.scrollTo(0, 0);
  }

  function submit() {
    if (!cur || cur.busy) return;
    var got = valueOrError();
    if (got.error) { status(got.error, true); return; }
    var lack = missing();
    if (lack.length) {
      status("To answer first: " + lack.map(function (m) { return m.text; }).join("; "), true);
      focusGroup(firstMissingGroup());
      return;
    }
    cur.busy = true;
    status("Saving…");
    var mine = cur;
    post(cur.form.dataset.submitUrl, {
      value: got.value,
      answers: collectAnswers(),
      duration_ms: Math.max(1, Math.round(performance.now() - cur.started)),
      rationale: cur.form.querySelector("textarea[name=rationale]").value,
      client_key: cur.clientKey  // the same key on a retry, so the answer is stored once
    }).then(function (r) {
      mine.busy = false;
      if (r.status === 200) { swap(r.data.next); return; }
      if (r.status === 409) { swap(r.data.next); status(r.data.error + " — here is your next item.", true); return; }
      status((r.data.field ? r.data.field + ": " : "") + (r.data.error || "Could not save (HTTP " + r.status + ")"), true);
    }, function () {
      mine.busy = false;
      status("Network error — press Enter to try again; your answer will be stored once.", true);
    });
  }

  // "N skipped, back at the end" in the header, updated from the skip's answer (no reload).
  function skippedCount(n) {
    if (typeof n !== "number") return;
    var wrap = app.querySelector("[data-skipped]");
    if (!wrap) return;
    wrap.querySelector("[data-skipped-count]").textContent = n + " skipped, back at the end";
    wrap.hidden = n === 0;
  }

  function skip() {
    if (!cur || cur.busy) return;
    cur.busy = true;
    status("Skipping…");
    var mine = cur;
    post(cur.form.dataset.skipUrl, {}).then(function (r) {
      mine.busy = false;
      if (r.status === 200) { swap(r.data.next); skippedCount(r.data.skipped_count); }
      else status(r.data.error || "Could not skip (HTTP " + r.status + ")", true);
    }, function () {
      mine.busy = false;
      status("Network error — press S to try again.", true);
    });
  }

  // Drawers: panels between the responses and the answer row, closed until a key opens them.
  function drawer(name) {
    return cur && cur.form.querySelector('[data-drawer="' + name + '"]');
  }

  function openDrawer(name, open) {
    var el = drawer(name);
    if (!el) return null;
    el.classList.toggle("open", open !== false);
    cur.form.querySelectorAll('[data-action=drawer][data-drawer-name="' + name + '"]').forEach(function (b) {
      b.setAttribute("aria-expanded", el.classList.contains("open") ? "true" : "false");
    });
    var field = el.querySelector("textarea, input, select");
    if (open !== false && field) field.focus();
    return el;
  }

  function leaveField(target) {
    target.blur();
    var el = target.closest("[data-drawer]");
    // An empty drawer closes again, so the responses get their room back.
    if (el && !target.value) openDrawer(el.dataset.drawer, false);
  }

  function toggleInstructions() {
    instructions.open = !instructions.open;
    if (instructions.open) instructions.scrollIntoView({ block: "nearest" });
  }

  function onKey(event) {
    var target = event.target;
    var group = cur && target && target.closest ? target.closest("[data-question]") : null;
    if (group && target.tagName === "TEXTAREA") {
      // A text question: Tab and Esc leave it; Q is a letter here.
      if (event.key === "Escape") { event.preventDefault(); target.blur(); return; }
    }
    var typing = target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text") || target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Escape") { leaveField(target); event.preventDefault(); }
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    if (cur && cur.questions.length) {
      if (key === "q" || key === "Q") { event.preventDefault(); moveQuestion(group, event.shiftKey ? -1 : 1); return; }
      if (group) {
        if (key === "Escape") { event.preventDefault(); target.blur(); status(""); return; }
        if (key.length === 1 && answerKey(group, key)) { event.preventDefault(); return; }
        // Arrows walk a scale's points and Space ticks a label, as the browser does for them.
        if (key === "ArrowLeft" || key === "ArrowRight" || key === "ArrowUp" || key === "ArrowDown" || key === " ") return;
      }
    }
    if (key === "?" || key === "i" || key === "I") { event.preventDefault(); toggleInstructions(); return; }
    if (!cur) return;
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (key === "Enter") { event.preventDefault(); submit(); return; }
    if (lower === "s") { event.preventDefault(); skip(); return; }
    if (lower === "r") { event.preventDefault(); openDrawer("rationale"); return; }
    if (cur.kind === "binary" || cur.kind === "likert") {
      if (cur.kind === "binary" && key === "ArrowLeft") lower = "a";
      if (cur.kind === "binary" && key === "ArrowRight") lower = "b";
      var button = cur.form.querySelector('[data-choice][data-key="' + CSS.escape(lower) + '"]');
      if (button) { event.preventDefault(); choose(button); }
      return;
    }
    if (cur.kind === "ranking") {
      if (key === "Backspace") { event.preventDefault(); undo(); return; }
      if (key === "=" && allowTies && cur.ranking.length) { event.preventDefault(); cur.tieNext = true; paint(); return; }
      if (/^[0-9]$/.test(key)) { event.preventDefault(); place(key === "0" ? 10 : Number(key)); }
      return;
    }
    if (cur.kind === "rating") {
      if (key === "ArrowLeft" || key === "ArrowRight") {
        event.preventDefault();
        var n = cur.cards.length;
        cur.current = (cur.current + (key === "ArrowRight" ? 1 : n - 1)) % n;
        cur.moved = true;
        paint();
        return;
      }
      if (score(lower)) event.preventDefault();
    }
  }

  function onClick(event) {
    if (!cur) return;
    var choice = event.target.closest("[data-choice]");
    if (choice) { event.preventDefault(); choose(choice); return; }
    if (event.target.closest("[data-question]")) return; // a question's own control, not the card
    var action = event.target.closest("[data-action]");
    if (action && action.dataset.action === "goto-missing") { event.preventDefault(); focusGroup(firstMissingGroup()); return; }
    if (action && action.dataset.action === "submit") { event.preventDefault(); submit(); return; }
    if (action && action.dataset.action === "skip") { event.preventDefault(); skip(); return; }
    if (action && action.dataset.action === "drawer") {
      var el = drawer(action.dataset.drawerName);
      openDrawer(action.dataset.drawerName, !(el && el.classList.contains("open")));
      return;
    }
    if (cur.kind === "ranking") {
      var card = event.target.closest(".candidate");
      if (card && !event.target.closest("a, select, textarea")) place(Number(card.dataset.index));
    }
    if (cur.kind === "rating") {
      var rated = event.target.closest(".candidate");
      var group = event.target.closest("[data-scores]");
      if (group) rated = cur.cards.filter(function (c) { return c.dataset.position === group.dataset.position; })[0];
      if (rated) { cur.current = cur.cards.indexOf(rated); paint(); }
    }
  }

  // "Show all" on a text longer than the page renders (annotation/_show_all.html): the whole
  // text, fetched on demand and shown as plain text (textContent: never parsed as HTML).
  stage.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-show-all]");
    if (!link) return;
    event.preventDefault();
    var note = link.parentNode;
    var md = note.previousElementSibling;
    link.textContent = "Loading…";
    fetch(link.href, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (text) {
        var pre = document.createElement("pre");
        pre.className = "full-text";
        pre.textContent = text;
        md.replaceChildren(pre);
        note.remove();
      })
      .catch(function () { link.textContent = "Could not load the text; open it in a new tab"; link.removeAttribute("data-show-all"); });
  });
  document.addEventListener("keydown", onKey);
  stage.addEventListener("click", onClick);
  stage.addEventListener("change", function () { paint(); });
  stage.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
  setup();
})();
