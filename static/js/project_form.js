/* The project form: show only the chosen kind's settings, keep the preview of what raters will
 * see in step with them, and pick members from a searchable list. Without this file the form
 * shows every setting and takes usernames typed in.
 *
 * The preview is HTML from our own template (GET data-preview-url with the kind settings), with
 * all text escaped or sanitised server-side, put into an inert box.
 */
(function () {
  "use strict";

  var form = document.querySelector("form.project-form");
  if (!form) return;
  document.documentElement.classList.add("js");
  var preview = document.getElementById("kind-preview");
  var previewFields = (form.dataset.previewFields || "").split(" ");
  var timer = null;
  var asked = 0;

  function chosenKind() {
    var radio = form.querySelector("input[name=kind]:checked");
    return radio ? radio.value : "";
  }

  function showKind() {
    var kind = chosenKind();
    form.querySelectorAll("[data-kind-settings]").forEach(function (group) {
      group.classList.toggle("active", group.dataset.kindSettings === kind);
    });
    form.querySelectorAll(".kind-card").forEach(function (card) {
      card.classList.toggle("checked", card.querySelector("input").checked);
    });
  }

  function loadPreview() {
    if (!preview || !form.dataset.previewUrl) return;
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (previewFields.indexOf(name) !== -1) params.append(name, value);
    });
    var mine = ++asked;
    fetch(form.dataset.previewUrl + "?" + params.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (mine !== asked) return; // a later change already asked again
        preview.innerHTML = html;
        preview.dataset.loaded = String(mine);
      });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(loadPreview, 150);
  }

  function onChange(event) {
    var name = event.target.name;
    if (name === "kind") showKind();
    if (previewFields.indexOf(name) !== -1) schedule();
  }

  form.addEventListener("change", onChange);
  form.addEventListener("input", onChange);
  showKind();

  // Member picker: the buttons write usernames into the form's own text fields.
  var picker = form.querySelector("[data-member-picker]");
  if (!picker) return;
  var targets = { rater: form.elements.raters, researcher: form.elements.researchers };
  var rows = Array.prototype.slice.call(picker.querySelectorAll("[data-username]"));

  function names(input) {
    return input.value.split(/[\s,]+/).filter(function (n) { return n; });
  }

  function paintPicker() {
    rows.forEach(function (row) {
      row.querySelectorAll("[data-picker-role]").forEach(function (button) {
        var on = names(targets[button.dataset.pickerRole]).indexOf(row.dataset.username) !== -1;
        button.setAttribute("aria-pressed", on ? "true" : "false");
      });
    });
  }

  function toggle(username, role) {
    Object.keys(targets).forEach(function (r) {
      var list = names(targets[r]).filter(function (n) { return n !== username; });
      var had = names(targets[r]).indexOf(username) !== -1;
      if (r === role && !had) list.push(username); // a second press takes the person off again
      targets[r].value = list.join(", ");
    });
    paintPicker();
  }

  picker.querySelector("[data-picker-search]").addEventListener("input", function (event) {
    var needle = event.target.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var match = !needle || row.dataset.username.toLowerCase().indexOf(needle) !== -1;
      row.hidden = !match;
      if (match) shown++;
    });
    picker.querySelector("[data-picker-empty]").hidden = shown > 0;
  });
  picker.addEventListener("click", function (event) {
    var button = event.target.closest("[data-picker-role]");
    if (!button) return;
    toggle(button.closest("[data-username]").dataset.username, button.dataset.pickerRole);
  });
  Object.keys(targets).forEach(function (r) { targets[r].addEventListener("input", paintPicker); });
  paintPicker();
})();
