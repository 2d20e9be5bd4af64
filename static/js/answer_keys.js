/* Keyboard for the answer forms of My work (change an answer) and adjudication (final answer),
 * so an edit needs no mouse: the labelling page's keys pick a choice (A/B/T/X, or a scale's
 * digits: each radio carries its key as data-key), Tab walks the rank/score selects, and
 * Ctrl+Enter (or Cmd+Enter) presses the form's main button ([data-keys-submit]: on
 * adjudication, "Save and next"). The project's questions (My work) are reached with Tab; a digit
 * sets the focused scale or toggles the focused question's numbered label. Without this file the
 * forms work as plain forms. */
(function () {
  "use strict";

  var form = document.querySelector("form[data-answer-keys]");
  if (!form) return;

  function press() {
    var button = form.querySelector("[data-keys-submit]") || form.querySelector("button[type=submit]");
    if (button) button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); press(); return; }
    var target = event.target;
    // A question's control has the focus (Tab reaches it): its digits answer it, as on the
    // labelling page (each point or label carries data-point-key).
    var group = target && target.closest ? target.closest("[data-question]") : null;
    if (group && target.tagName === "INPUT" && !event.ctrlKey && !event.metaKey && !event.altKey && event.key.length === 1) {
      var own = group.querySelector('input[data-point-key="' + CSS.escape(event.key) + '"]');
      if (own) {
        event.preventDefault();
        own.checked = own.type === "radio" ? true : !own.checked;
        own.focus();
        return;
      }
    }
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" || (target.tagName === "INPUT" && target.type !== "radio"));
    if (typing || event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) return;
    var radio = form.querySelector('input[type=radio][data-key="' + CSS.escape(event.key.toLowerCase()) + '"]');
    if (!radio) return;
    event.preventDefault();
    radio.checked = true;
    radio.focus();
  });

  // The first control has the focus on arrival, so keys and Tab start in the form.
  var first = form.querySelector("input[type=radio]:checked, input[type=radio], select");
  if (first) first.focus({ preventScroll: true });
  form.dataset.keysReady = "1";  // the browser tests wait for this before pressing keys
})();
