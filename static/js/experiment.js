/* The experiment launch form: only the chosen kind's fields (and the chosen agent's) are shown, from
   the widgets' data-kinds / data-agents (experiments.forms.KIND_FIELDS); an upper bound on the
   episodes the experiment could run and the time that takes at the measured throughput
   (bench/results/eval_throughput.json), updated as the form changes, next to the launch button. The same bound as experiments.services.estimate_episodes:
   for each task (and library size, in scaling runs) rounds x K (1 in a fix loop) x debug seeds, plus its
   held-out seeds once; the server refuses a launch over the limit (ASPIRE_MAX_EXPERIMENT_EPISODES). */
"use strict";
(function () {
  const out = document.getElementById("episode-estimate");
  const form = document.getElementById("experiment-form");
  if (!out || !form) return;
  const cap = parseInt(out.dataset.cap, 10);
  const field = function (name) { return form.querySelector("[name=" + name + "]"); };
  const timeOut = document.getElementById("time-estimate");
  const kindField = field("kind");
  const defaults = kindField && kindField.dataset.defaults ? JSON.parse(kindField.dataset.defaults) : {};
  const modes = kindField && kindField.dataset.modes ? JSON.parse(kindField.dataset.modes) : {};

  /* Show the fields the chosen kind and agent use; the server ignores the others (search_overrides). */
  function showFields() {
    const kind = kindField ? kindField.value : "search";
    const agent = field("agent") ? field("agent").value : "offline";
    for (const el of form.querySelectorAll("[data-kinds], [data-agents]")) {
      let shown = true;
      if (el.dataset.kinds !== undefined) shown = el.dataset.kinds.split(" ").indexOf(kind) >= 0;
      if (shown && el.dataset.agents !== undefined) shown = el.dataset.agents.split(" ").indexOf(agent) >= 0;
      const box = el.closest(".field");
      if (box) box.classList.toggle("kind-hidden", !shown);
    }
  }

  /* A search setting: the form's value when the kind shows the field, else the kind's own or the default. */
  function setting(name, fallback) {
    const el = field(name);
    const kind = kindField ? kindField.value : "search";
    const box = el ? el.closest(".field") : null;
    if (el && !(box && box.classList.contains("kind-hidden"))) return parseInt(el.value, 10);
    const own = defaults[kind] || {};
    return own[name] !== undefined ? own[name] : fallback;
  }

  function duration(seconds) {
    if (seconds < 90) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " days";
  }

  /* The number of distinct seeds in "101-125" / "1,4,9" text; null when the text is not a seed list. */
  function countSeeds(text) {
    const seen = new Set();
    for (const raw of text.split(",")) {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
      if (!m) return null;
      const lo = parseInt(m[1], 10), hi = m[2] === undefined ? lo : parseInt(m[2], 10);
      if (hi < lo || hi - lo >= 10000) return null;
      for (let s = lo; s <= hi; s += 1) seen.add(s);
    }
    return seen.size;
  }

  /* An override field: null when blank (each task's own split), NaN when unreadable. */
  function override(name) {
    const el = field(name);
    const text = el ? el.value.trim() : "";
    if (!text) return null;
    const n = countSeeds(text);
    return n === null ? NaN : n;
  }

  function chosenTasks() {
    const byKey = new Map();
    const select = field("tasks");
    const suite = field("suite");
    if (!select) return [];
    for (const opt of select.options) {
      if (opt.selected || (suite && suite.value && opt.dataset.suite === suite.value)) byKey.set(opt.value, opt);
    }
    return Array.from(byKey.values());
  }

  function estimate() {
    const tasks = chosenTasks();
    if (!tasks.length) return { text: "Choose tasks to see how many episodes this experiment could run." };
    const kind = kindField ? kindField.value : "search";
    const k = setting("candidates_per_round", 8);
    const rounds = setting("max_rounds", 5);
    const debug = override("debug_seeds"), heldout = override("heldout_seeds");
    if (!(k >= 1) || !(rounds >= 1) || Number.isNaN(debug) || Number.isNaN(heldout)) {
      return { text: "Fix the fields above to see the estimate." };
    }
    let actorsPerTask = 1;
    if (kind === "scaling" && field("library_sizes")) {
      const sizes = new Set(field("library_sizes").value.split(",").map(function (v) { return v.trim(); }).filter(Boolean));
      actorsPerTask = Math.max(sizes.size, 1);
    }
    const perRound = (modes[kind] || "search") === "fix_loop" ? 1 : k;
    let total = 0;
    for (const opt of tasks) {
      const nDebug = debug !== null ? debug : countSeeds(opt.dataset.debugSeeds || "") || 0;
      const nHeldout = heldout !== null ? heldout : countSeeds(opt.dataset.heldoutSeeds || "") || 0;
      total += actorsPerTask * (rounds * perRound * nDebug + nHeldout);
    }
    return { total: total };
  }

  function renderTime(total) {
    if (!timeOut) return;
    const one = parseFloat(timeOut.dataset.epsOne), two = parseFloat(timeOut.dataset.epsTwo);
    if (!(one > 0) || total === undefined) { timeOut.dataset.seconds = ""; return; }
    timeOut.dataset.seconds = String(Math.round(total / one));
    timeOut.textContent = "Time: at most about " + duration(total / one) + " on one worker" +
      (two > 0 ? ", " + duration(total / two) + " on two" : "") + " (measured " + one + " and " + two +
      " episodes/s on " + (timeOut.dataset.task || "a reference task") + ", bench/results/eval_throughput.json" +
      (timeOut.dataset.measured ? ", " + timeOut.dataset.measured : "") + "; searches that reach the target stop earlier).";
  }

  function render() {
    showFields();
    const e = estimate();
    renderTime(e.total);
    if (e.total === undefined) {
      out.textContent = e.text + " Limit: " + cap.toLocaleString("en") + " episodes.";
      out.className = "muted";
      delete out.dataset.estimate;
      return;
    }
    const over = e.total > cap;
    out.textContent = "At most " + e.total.toLocaleString("en") + " episodes (limit " + cap.toLocaleString("en") + ")" +
      (over ? ": too many; choose fewer tasks, seeds, rounds or candidates per round." : ".");
    out.className = over ? "errors" : "muted";
    out.dataset.estimate = String(e.total);
  }

  form.addEventListener("input", render);
  form.addEventListener("change", render);
  render();
})();
