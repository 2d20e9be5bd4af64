/* The demonstration editor of the labelling page (templates/annotation/_demonstration_editor.html).
 * W or the "Write a better answer" button (beside Skip and Submit, so a phone can reach it)
 * opens it, prefilled with the response the rater's answer prefers (or blank); Ctrl+Enter saves
 * it; Preview asks the server for the markdown as it will be shown (the same safe renderer, so
 * what the preview inserts is sanitised server-side). A response still unsaved when the judgment
 * is submitted is saved with it. Works beside label.js without touching its state: it reads the
 * page (selected choice, rank badges, checked scores) and talks to its own endpoints.
 */
(function () {
  "use strict";

  var stage = document.getElementById("label-stage");
  if (!stage) return;

  function editor() { return stage.querySelector("#demo-editor"); }
  function el(name) { var e = editor(); return e && e.querySelector("[" + name + "]"); }

  function csrf() {
    var input = stage.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body, keepalive) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) { return { status: r.status, data: data }; });
    });
  }

  function status(text, isError) {
    var s = el("data-demo-status");
    if (!s) return;
    s.textContent = text || "";
    s.classList.toggle("error", !!isError);
  }

  // The candidate position the rater's answer prefers so far, or "" when it prefers none yet.
  function preferred() {
    var chosen = stage.querySelector("[data-choice].selected");
    if (chosen) {
      try {
        var w = JSON.parse(chosen.dataset.value).winner;
        return typeof w === "number" ? String(w) : "";
      } catch (e) { return ""; }
    }
    var first = null;
    stage.querySelectorAll(".candidate").forEach(function (card) {
      var badge = card.querySelector("[data-rank-badge]");
      if (badge && badge.textContent === "#1" && first === null) first = card.dataset.position;
    });
    if (first !== null) return first;
    var best = null, bestScore = null;
    stage.querySelectorAll(".candidate").forEach(function (card) {
      var checked = card.querySelector("input[type=radio]:checked");
      if (checked && (bestScore === null || Number(checked.value) > bestScore)) { bestScore = Number(checked.value); best = card.dataset.position; }
    });
    return best === null ? "" : best;
  }

  function fill(position) {
    var text = el("data-demo-text");
    var source = editor().querySelector('[data-source-text="' + position + '"]');
    text.value = source ? source.value : "";
    text.dataset.filled = text.value;
    el("data-demo-source").value = position;
  }

  function open() {
    var e = editor();
    if (!e) return false;
    var text = el("data-demo-text");
    if (e.hidden) {
      e.hidden = false;
      if (!text.value) fill(preferred());
    }
    // label.css lays the open editor beside the responses on a laptop (class on the form).
    var form = e.closest("form");
    if (form) form.classList.add("demo-open");
    stage.querySelectorAll('[data-demo-action="open"]').forEach(function (b) { b.setAttribute("aria-expanded", "true"); });
    text.focus();
    e.scrollIntoView({ block: "nearest" });
    return true;
  }

  function close() {
    var e = editor();
    if (!e) return;
    e.hidden = true;
    var form = e.closest("form");
    if (form) form.classList.remove("demo-open");
    stage.querySelectorAll('[data-demo-action="open"]').forEach(function (b) { b.setAttribute("aria-expanded", "false"); });
  }

  function payload(finish) {
    var source = el("data-demo-source").value;
    var text = el("data-demo-text");
    // Untouched text copied from a candidate is no rewrite: nothing to save.
    return { text: text.value, source_position: source === "" ? null : Number(source), finish: !!finish };
  }

  function unsaved() {
    var e = editor();
    if (!e || e.hidden) return false;
    var text = el("data-demo-text");
    return text.value.trim() !== "" && text.value !== text.dataset.filled && text.value !== text.dataset.saved;
  }

  function save(finish, keepalive) {
    var e = editor();
    var body = payload(finish);
    var text = el("data-demo-text");
    status(finish ? "Submitting…" : "Saving…");
    return post(e.dataset.demoUrl, body, keepalive).then(function (r) {
      if (r.status === 200) {
        text.dataset.saved = body.text;
        status(r.data.rewrite ? "Saved as a rewrite of the response you started from." : "Saved.");
        if (finish) window.location.reload();  // the page leases the next item
      } else {
        status((r.data.field ? r.data.field + ": " : "") + (r.data.error || "Could not save (HTTP " + r.status + ")"), true);
      }
      return r;
    }, function () { status("Network error — try again.", true); });
  }

  function preview() {
    var e = editor();
    post(e.dataset.previewUrl, { text: el("data-demo-text").value }).then(function (r) {
      var box = el("data-demo-preview");
      // Sanitised by the server's markdown renderer (annotation/rendering.py), as every response on this page.
      if (r.status === 200) box.innerHTML = r.data.html;
      else status(r.data.error || "Could not preview", true);
    });
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var inEditor = target && target.hasAttribute && target.hasAttribute("data-demo-text");
    if (inEditor) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        // Not label.js's Ctrl+Enter (submit the judgment): here it saves the response.
        event.preventDefault();
        event.stopPropagation();
        save(false);
      }
      return;
    }
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "w" || event.key === "W") {
      if (open()) { event.preventDefault(); event.stopPropagation(); }
    } else if (event.key === "Enter" && unsaved()) {
      save(false, true);  // the judgment goes out too (label.js); the response is stored beside it
    }
  }, true);

  stage.addEventListener("click", function (event) {
    var action = event.target.closest("[data-demo-action]");
    if (action) {
      event.preventDefault();
      if (action.dataset.demoAction === "open") { if (editor() && !editor().hidden && action.getAttribute("aria-expanded") === "true") close(); else open(); }
      else if (action.dataset.demoAction === "close") close();
      else if (action.dataset.demoAction === "preview") preview();
      else if (action.dataset.demoAction === "save") save(false);
      else if (action.dataset.demoAction === "finish") save(true);
      return;
    }
    if (event.target.closest('[data-action="submit"]') && unsaved()) save(false, true);
  }, true);

  stage.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-demo-source")) fill(event.target.value);
  });
})();
