/* The project form: show only the chosen kind's settings, keep the preview of what raters will
 * see in step with them, and pick members from a searchable list. Without this file the form
 * shows every setting and takes usernames typed in.
 *
 * The questions builder: rows of inputs, one per question, written as JSON into the form's
 * `questions` field on every change (the field a manager without JavaScript types JSON into).
 * The server checks the declaration; its errors ("Question 2 (helpfulness), max: ...") are put
 * beside the row and input they name.
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
    // POSTed: the questions' declaration can outgrow a URL.
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (previewFields.indexOf(name) !== -1 || name === "csrfmiddlewaretoken") params.append(name, value);
    });
    var mine = ++asked;
    fetch(form.dataset.previewUrl, { method: "POST", body: params, credentials: "same-origin", headers: { Accept: "text/html" } })
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
  setupQuestions();

  // ---- Questions builder -------------------------------------------------------------------
  function setupQuestions() {
    var builder = form.querySelector("[data-question-builder]");
    var field = form.elements.questions;
    var template = document.getElementById("question-row-template");
    if (!builder || !field || !template) return;
    var list = builder.querySelector("[data-question-rows]");
    var status = builder.querySelector("[data-builder-status]");
    var details = form.querySelector("[data-question-json]");
    var presets = readJSON("question-presets", {});
    var answered = readJSON("answered-keys", []);
    var KNOWN = ["key", "label", "type", "per", "required", "help", "min", "max", "scale_labels", "choices", "max_chars"];
    var DEFAULTS = { scale: { min: 1, max: 5 }, text: { max_chars: 500 } };
    var uid = 0;

    function readJSON(id, fallback) {
      var el = document.getElementById(id);
      try { return el ? JSON.parse(el.textContent) : fallback; } catch (e) { return fallback; }
    }

    function input(row, name) { return row.querySelector('[data-q="' + name + '"]'); }
    function rows() { return Array.prototype.slice.call(list.querySelectorAll("[data-question-row]")); }
    function say(text) { status.textContent = text; }

    // What the manager typed, kept as typed where it is no whole number: the server names the field.
    function number(value) {
      if (value.trim() === "") return undefined;
      var n = Number(value);
      return Number.isInteger(n) ? n : value;
    }
    function nonEmptyLines(text) {
      return text.split("\n").map(function (l) { return l.trim(); }).filter(function (l) { return l; });
    }
    // Scale labels are one per point: an empty line in the middle is a point without a name.
    function pointLines(text) {
      var out = text.split("\n").map(function (l) { return l.trim(); });
      while (out.length && !out[out.length - 1]) out.pop();
      return out.some(function (l) { return l; }) ? out : [];
    }
    function slug(text) {
      return text.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^[^a-z]+/, "").replace(/_+$/, "").slice(0, 40);
    }

    function readRow(row) {
      var type = input(row, "type").value;
      var q = { key: input(row, "key").value.trim() };
      var label = input(row, "label").value.trim();
      if (label) q.label = label; // left out, the key is the label
      q.type = type;
      q.per = type === "text" ? "item" : input(row, "per").value;
      q.required = input(row, "required").checked;
      q.help = input(row, "help").value.trim();
      var put = function (name, value) { if (value !== undefined) q[name] = value; };
      if (type === "scale") {
        put("min", number(input(row, "min").value));
        put("max", number(input(row, "max").value));
        q.scale_labels = pointLines(input(row, "scale_labels").value);
      } else if (type === "labels") {
        q.choices = nonEmptyLines(input(row, "choices").value);
      } else {
        put("max_chars", number(input(row, "max_chars").value));
      }
      // Fields the builder has no input for (typed into the JSON) go back as they came.
      Object.keys(row.extra || {}).forEach(function (name) { if (!(name in q)) q[name] = row.extra[name]; });
      return q;
    }

    function showType(row) {
      var type = input(row, "type").value;
      row.querySelectorAll("[data-type-only]").forEach(function (el) { el.hidden = el.dataset.typeOnly !== type; });
      var per = input(row, "per");
      if (type === "text") per.value = "item";
      per.disabled = type === "text" || row.dataset.locked === "true";
      Object.keys(DEFAULTS[type] || {}).forEach(function (name) {
        if (input(row, name).value === "") input(row, name).value = DEFAULTS[type][name];
      });
    }

    function paint() {
      var all = rows();
      all.forEach(function (row, i) {
        var q = readRow(row);
        row.querySelector("[data-number]").textContent = String(i + 1);
        var shape = q.type === "scale" ? q.min + "–" + q.max : q.type;
        row.querySelector("[data-summary]").textContent = q.key ? "· " + q.key + " (" + shape + ")" : "";
        row.querySelector('[data-move="-1"]').disabled = i === 0;
        row.querySelector('[data-move="1"]').disabled = i === all.length - 1;
        [["-1", "up"], ["1", "down"]].forEach(function (m) {
          row.querySelector('[data-move="' + m[0] + '"]').setAttribute("aria-label", "Move question " + (i + 1) + " " + m[1]);
        });
        row.querySelector("[data-remove]").setAttribute("aria-label", "Remove question " + (i + 1));
      });
      builder.querySelector("[data-question-empty]").hidden = all.length > 0;
    }

    // Rows -> the one field the form posts, then the preview.
    function sync() {
      var all = rows();
      field.value = all.length ? JSON.stringify(all.map(readRow), null, 2) : "[]";
      paint();
      schedule();
    }

    function addRow(q) {
      var row = template.content.firstElementChild.cloneNode(true);
      var id = "q" + (++uid);
      row.querySelectorAll("[data-q]").forEach(function (el) { el.id = id + "-" + el.dataset.q; });
      row.querySelectorAll("[data-label-for]").forEach(function (label) {
        var target = row.querySelector('[data-q="' + label.dataset.labelFor + '"]');
        if (target.type !== "checkbox") label.htmlFor = target.id;
      });
      var type = ["scale", "labels", "text"].indexOf(q.type) !== -1 ? q.type : "scale";
      input(row, "type").value = type;
      input(row, "per").value = q.per === "item" ? "item" : "response";
      input(row, "key").value = typeof q.key === "string" ? q.key : "";
      input(row, "label").value = typeof q.label === "string" ? q.label : "";
      input(row, "required").checked = q.required === true;
      input(row, "help").value = typeof q.help === "string" ? q.help : "";
      ["min", "max", "max_chars"].forEach(function (name) { if (q[name] !== undefined && q[name] !== null) input(row, name).value = String(q[name]); });
      if (Array.isArray(q.scale_labels)) input(row, "scale_labels").value = q.scale_labels.join("\n");
      if (Array.isArray(q.choices)) input(row, "choices").value = q.choices.join("\n");
      row.extra = {};
      Object.keys(q).forEach(function (name) { if (KNOWN.indexOf(name) === -1) row.extra[name] = q[name]; });
      // The key follows the label until the manager types a key of their own.
      row.dataset.autoKey = input(row, "key").value ? "" : "true";
      if (answered.indexOf(q.key) !== -1) lock(row);
      list.appendChild(row);
      showType(row);
      return row;
    }

    // A question with stored answers: what the answers' shape depends on cannot change.
    function lock(row) {
      row.dataset.locked = "true";
      row.querySelector("[data-locked-note]").hidden = false;
      ["key", "min", "max", "choices"].forEach(function (name) { input(row, name).readOnly = true; });
      input(row, "type").disabled = true;
      row.querySelector("[data-remove]").disabled = true;
    }

    function build(declaration) {
      list.textContent = "";
      declaration.forEach(addRow);
      paint();
    }

    // The field's JSON -> rows. Text the builder cannot show stays in the JSON box, untouched.
    function load() {
      var text = field.value.trim();
      var parsed;
      try { parsed = text ? JSON.parse(text) : []; } catch (e) { parsed = null; }
      var usable = Array.isArray(parsed) && parsed.every(function (q) { return q && typeof q === "object" && !Array.isArray(q); });
      builder.hidden = !usable;
      if (usable) build(parsed);
      return usable;
    }

    // The server's errors beside the row and input they name (the list above keeps them all).
    function placeErrors() {
      form.querySelectorAll("#question-errors [data-question-index]").forEach(function (item) {
        if (item.dataset.questionIndex === "") return;
        var row = rows()[Number(item.dataset.questionIndex)];
        if (!row) return;
        var box = row.querySelector('[data-field="' + item.dataset.questionField + '"]') || row.querySelector(".q-grid");
        var note = document.createElement("p");
        note.className = "error";
        note.id = "qerr" + (++uid);
        note.textContent = item.textContent;
        box.appendChild(note);
        box.classList.add("has-error");
        var control = box.querySelector("[data-q]");
        if (control) {
          control.setAttribute("aria-invalid", "true");
          control.setAttribute("aria-describedby", note.id);
        }
      });
    }

    builder.addEventListener("input", function (event) {
      var row = event.target.closest("[data-question-row]");
      if (!row) return;
      var name = event.target.dataset.q;
      if (name === "key") row.dataset.autoKey = "";
      if (name === "label" && row.dataset.autoKey === "true") input(row, "key").value = slug(event.target.value);
      if (name === "type") showType(row);
      sync();
    });
    builder.addEventListener("change", function (event) {
      var row = event.target.closest("[data-question-row]");
      if (row && event.target.dataset.q === "type") { showType(row); sync(); }
    });
    builder.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) return;
      var row = button.closest("[data-question-row]");
      if (button.hasAttribute("data-add-question")) {
        var added = addRow({ type: "scale", per: "response", required: true });
        sync();
        input(added, "label").focus();
        say("Added question " + rows().length + ".");
      } else if (button.dataset.preset) {
        var have = rows().map(function (r) { return input(r, "key").value.trim(); });
        var fresh = (presets[button.dataset.preset] || { questions: [] }).questions.filter(function (q) { return have.indexOf(q.key) === -1; });
        var first = null;
        fresh.forEach(function (q) { var r = addRow(JSON.parse(JSON.stringify(q))); first = first || r; });
        sync();
        if (first) input(first, "label").focus();
        say(fresh.length ? "Added " + fresh.map(function (q) { return q.key; }).join(", ") + "." : "Those questions are already there.");
      } else if (row && button.dataset.move) {
        var step = Number(button.dataset.move);
        var sibling = step < 0 ? row.previousElementSibling : row.nextElementSibling;
        if (!sibling) return;
        list.insertBefore(row, step < 0 ? sibling : sibling.nextElementSibling);
        sync();
        (button.disabled ? row.querySelector('[data-move="' + -step + '"]') : button).focus();
        say("Moved to position " + (rows().indexOf(row) + 1) + ".");
      } else if (row && button.hasAttribute("data-remove")) {
        var next = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        sync();
        (next ? input(next, "type").disabled ? input(next, "label") : input(next, "type") : builder.querySelector("[data-add-question]")).focus();
        say("Removed a question.");
      }
    });
    // JSON typed into the box (a manager pasting a declaration): the rows follow once it parses.
    field.addEventListener("change", function () {
      if (load()) say("Read the JSON into the builder.");
    });

    if (load()) {
      placeErrors();
      // The JSON box is the fallback and a view for the API; folded while the builder works.
      if (details) details.open = false;
    } else {
      say("");
    }
  }

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