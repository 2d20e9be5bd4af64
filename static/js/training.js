// Training pages: live run progress and metric charts (small SVG line charts, no library),
// and the start-run form's method switch. Loaded as a file: the CSP allows no inline script.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var POLL_MS = 3000;
  // Which metric keys go on which chart. The run page embeds its recipe's metrics (the registry:
  // key and chart group); without them, by name, so "eval_loss" joins "loss".
  var GROUPS = [
    { title: "Loss", match: function (k) { return k.indexOf("loss") !== -1; } },
    { title: "Accuracy", match: function (k) { return k.indexOf("acc") !== -1; } },
    { title: "Learning rate", match: function (k) { return k === "lr" || k.indexOf("learning_rate") !== -1; } },
    { title: "Reward margin", match: function (k) { return k.indexOf("margin") !== -1; } },
  ];
  var COLORS = ["#3b5bdb", "#e8590c", "#2f9e44", "#ae3ec9", "#1098ad", "#f08c00"];

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmt(v) {
    if (v === 0) return "0";
    var a = Math.abs(v);
    return a >= 1000 || a < 0.01 ? v.toExponential(1) : v.toFixed(a >= 10 ? 1 : 3);
  }

  // One chart: every series in `series` ({key: [[step, value], ...]}) on shared axes.
  function drawChart(box, title, series) {
    // The title and one legend line per series sit above the plot, each on a line of its own:
    // sharing the title's line, a long legend (GRPO's reward keys) ran over the title.
    var keys = Object.keys(series);
    var LINE = 12, TOP = 22 + LINE * keys.length;
    var W = 360, H = 158 + TOP, L = 48, R = 8, T = TOP + 4, B = 24;
    box.textContent = "";
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title, "class": "chart" }, box);
    var xs = [], ys = [];
    keys.forEach(function (k) { series[k].forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var title_ = el("text", { x: L, y: 14, "class": "chart-title" }, svg);
    title_.textContent = title;
    if (!xs.length) return;
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    function sx(v) { return L + (W - L - R) * (v - x0) / (x1 - x0); }
    function sy(v) { return T + (H - T - B) * (1 - (v - y0) / (y1 - y0)); }
    el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, "class": "axis" }, svg);
    el("line", { x1: L, y1: T, x2: L, y2: H - B, "class": "axis" }, svg);
    [[y1, T], [y0, H - B]].forEach(function (t) {
      var label = el("text", { x: L - 4, y: t[1] + 4, "text-anchor": "end", "class": "tick" }, svg);
      label.textContent = fmt(t[0]);
    });
    [[x0, L, "start"], [x1, W - R, "end"]].forEach(function (t) {
      var label = el("text", { x: t[1], y: H - 6, "text-anchor": t[2], "class": "tick" }, svg);
      label.textContent = "step " + t[0];
    });
    keys.forEach(function (k, i) {
      var color = COLORS[i % COLORS.length];
      var pts = series[k].map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); }).join(" ");
      el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 1.8, "data-series": k }, svg);
      if (series[k].length === 1) el("circle", { cx: sx(series[k][0][0]), cy: sy(series[k][0][1]), r: 2.5, fill: color }, svg);
      var legend = el("text", { x: L, y: 14 + LINE * (i + 1), fill: color, "class": "legend" }, svg);
      var last = series[k][series[k].length - 1][1];
      legend.textContent = k + " " + fmt(last);
    });
  }

  function recipeGroups(container) {
    var raw = container.getAttribute("data-chart-groups");
    if (!raw) return null;
    var metrics;
    try { metrics = JSON.parse(raw); } catch (e) { return null; }
    if (!metrics || !metrics.length) return null;
    var groups = [], byTitle = {};
    metrics.forEach(function (m) {
      if (!byTitle[m.group]) { byTitle[m.group] = { title: m.group, keys: [] }; groups.push(byTitle[m.group]); }
      byTitle[m.group].keys.push(m.key);
    });
    return groups.map(function (g) { return { title: g.title, match: function (k) { return g.keys.indexOf(k) !== -1; } }; });
  }

  // Fewer than 3 points make no curve worth reading: say so and give the values.
  function drawFew(box, title, series) {
    box.textContent = "";
    var h = document.createElement("figcaption");
    h.className = "chart-title";
    h.textContent = title;
    box.appendChild(h);
    var p = document.createElement("p");
    p.className = "muted small chart-few";
    var parts = Object.keys(series).map(function (k) {
      return k + ": " + series[k].map(function (pt) { return fmt(pt[1]) + " (step " + pt[0] + ")"; }).join(", ");
    });
    var n = Math.max.apply(null, Object.keys(series).map(function (k) { return series[k].length; }));
    p.textContent = "Only " + n + " point" + (n === 1 ? "" : "s") + " so far, too few for a line. " + parts.join("; ");
    box.appendChild(p);
  }

  function renderCharts(container, points) {
    (recipeGroups(container) || GROUPS).forEach(function (group, gi) {
      var series = {};
      points.forEach(function (p, i) {
        var step = typeof p.step === "number" ? p.step : i;
        Object.keys(p).forEach(function (k) {
          if (k === "step" || k === "epoch" || typeof p[k] !== "number" || !isFinite(p[k]) || !group.match(k)) return;
          (series[k] = series[k] || []).push([step, p[k]]);
        });
      });
      var box = container.querySelector('[data-chart="' + gi + '"]');
      if (!Object.keys(series).length) { if (box) box.remove(); return; }
      if (!box) {
        box = document.createElement("figure");
        box.className = "chart-box";
        box.setAttribute("data-chart", gi);
        container.appendChild(box);
      }
      var most = Math.max.apply(null, Object.keys(series).map(function (k) { return series[k].length; }));
      if (most < 3) drawFew(box, group.title, series); else drawChart(box, group.title, series);
    });
  }

  function setText(root, field, text) {
    var node = root.querySelector('[data-field="' + field + '"]');
    if (node && node.textContent !== text) node.textContent = text;
    return node;
  }

  function live(root) {
    var url = root.getAttribute("data-metrics-url");
    var charts = root.querySelector("[data-charts]");
    var points = [], next = 0, timer = null;
    var statusBadges = document.querySelectorAll('[data-field="status"]');
    var logBox = root.querySelector('[data-field="log"]');
    logBox.scrollTop = logBox.scrollHeight; // the newest lines are the ones that matter

    function apply(state) {
      points = points.concat(state.metrics || []);
      next = state.next;
      renderCharts(charts, points);
      var bar = root.querySelector('[data-field="progressbar"]');
      bar.setAttribute("aria-valuenow", state.percent);
      bar.firstElementChild.style.width = state.percent + "%";
      // The server's words: "queued, 2nd in line on the gpu queue", "evaluating · 4 / 4 steps (100%)".
      setText(root, "steps", state.state ? state.state.line : state.step + " / " + (state.total_steps || "?") + " steps (" + state.percent + "%)");
      setText(root, "worker", state.worker || "–");
      setText(root, "device", state.device || "–");
      setText(root, "attempts", String(state.attempts));
      setText(root, "heartbeat", state.heartbeat_at ? new Date(state.heartbeat_at).toLocaleTimeString() : "–");
      setText(root, "cancel-note", state.cancel_requested && !state.finished ? "· stopping at the next step" : "");
      var log = root.querySelector('[data-field="log"]');
      if (log.textContent !== state.log_tail) { log.textContent = state.log_tail; log.scrollTop = log.scrollHeight; }
      var error = root.querySelector('[data-field="error"]');
      error.hidden = !state.error;
      setText(root, "error-text", state.error || "");
      statusBadges.forEach(function (b) { b.textContent = state.status; b.className = "status status-" + state.status; });
      if (state.finished && root.getAttribute("data-finished") !== "1") {
        // Results, the registered model and the cancel button change at the end: reload once.
        window.location.reload();
        return;
      }
      if (!state.finished) timer = window.setTimeout(poll, POLL_MS);
    }

    function poll() {
      fetch(url + "?since=" + next, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(apply)
        .catch(function () { timer = window.setTimeout(poll, POLL_MS * 3); });
    }
    poll();
  }

  // Start-run form: show the hyperparameters of the chosen method only (all show without JS).
  function runForm(form) {
    function sync() {
      var checked = form.querySelector('input[name="method"]:checked');
      var first = form.querySelector('input[name="method"]');
      var method = checked ? checked.value : (first ? first.value : "");
      form.querySelectorAll("fieldset.hyper").forEach(function (fs) {
        var on = fs.getAttribute("data-method") === method;
        fs.hidden = !on;
        fs.disabled = !on; // a hidden method's fields are not posted
      });
      var rm = form.querySelector("[data-reward-model]");
      if (rm) {
        var needed = (rm.getAttribute("data-needed-by") || "").split(" ").indexOf(method) !== -1;
        rm.hidden = !needed;
        rm.querySelector("select").disabled = !needed;
      }
    }
    form.addEventListener("change", sync);
    sync();
  }

  // Reward-model page: score responses through the API (session auth, so the CSRF header).
  function scoreForm(form) {
    var list = form.parentNode.querySelector("[data-scores]");
    var error = form.parentNode.querySelector("[data-score-error]");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var responses = form.elements.responses.value.split("\n").filter(function (l) { return l.trim() !== ""; });
      var button = form.querySelector("button");
      button.disabled = true;
      error.hidden = true;
      fetch(form.getAttribute("data-score-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value },
        body: JSON.stringify({ prompt: form.elements.prompt.value, responses: responses }),
      })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) throw new Error(JSON.stringify(res.body));
          list.textContent = "";
          res.body.scores.forEach(function (score, i) {
            var li = document.createElement("li");
            var b = document.createElement("strong");
            b.textContent = score.toFixed(4);
            li.appendChild(b);
            li.appendChild(document.createTextNode(" " + responses[i]));
            list.appendChild(li);
          });
        })
        .catch(function (err) { error.textContent = "Scoring failed: " + err.message; error.hidden = false; })
        .then(function () { button.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.score-form").forEach(scoreForm);
    document.querySelectorAll("[data-run-live]").forEach(live);
    document.querySelectorAll("[data-run-form]").forEach(runForm);
    document.querySelectorAll("[data-cancel-form]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm("Cancel this run? It stops at its next step.")) e.preventDefault(); });
    });
  });
  window.ArbiterTraining = { drawChart: drawChart, renderCharts: renderCharts };
})();
