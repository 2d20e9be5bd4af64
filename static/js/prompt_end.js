/* The prompt box of an item (labelling, adjudication, my work) is capped in height. The turn
 * being answered is the last one, so the box starts at its end and earlier turns scroll above
 * it; a last turn taller than the box starts at its own top, so its first line is what the
 * reader sees. A plain-text prompt is left at its top. label.js calls arbiterShowLastTurn again on every item it swaps in. */
(function () {
  "use strict";

  function showLastTurn(box) {
    // A plain-text prompt reads from its top; only a chat has a last turn to bring forward.
    var turns = box ? box.querySelectorAll(".msg") : [];
    if (!turns.length || box.scrollHeight <= box.clientHeight + 1) return;
    box.scrollTop = box.scrollHeight;
    var last = turns[turns.length - 1];
    if (last && last.offsetHeight > box.clientHeight) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 4;
    }
  }

  window.arbiterShowLastTurn = showLastTurn;
  document.querySelectorAll(".prompt").forEach(showLastTurn);
})();
