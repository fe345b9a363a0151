/* The experiment launch form: an upper bound on the episodes the experiment could run, updated as the
   form changes, next to the launch button. The same bound as experiments.services.estimate_episodes:
   for each task (and library size, in scaling runs) rounds x K (1 in a fix loop) x debug seeds, plus its
   held-out seeds once; the server refuses a launch over the limit (ASPIRE_MAX_EXPERIMENT_EPISODES). */
"use strict";
(function () {
  const out = document.getElementById("episode-estimate");
  const form = document.getElementById("experiment-form");
  if (!out || !form) return;
  const cap = parseInt(out.dataset.cap, 10);
  const field = function (name) { return form.querySelector("[name=" + name + "]"); };

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
    const kind = field("kind") ? field("kind").value : "search";
    const k = parseInt(field("candidates_per_round").value, 10);
    const rounds = parseInt(field("max_rounds").value, 10);
    const debug = override("debug_seeds"), heldout = override("heldout_seeds");
    if (!(k >= 1) || !(rounds >= 1) || Number.isNaN(debug) || Number.isNaN(heldout)) {
      return { text: "Fix the fields above to see the estimate." };
    }
    let actorsPerTask = 1;
    if (kind === "scaling" && field("library_sizes")) {
      const sizes = new Set(field("library_sizes").value.split(",").map(function (v) { return v.trim(); }).filter(Boolean));
      actorsPerTask = Math.max(sizes.size, 1);
    }
    const perRound = kind === "fix_loop" ? 1 : k;
    let total = 0;
    for (const opt of tasks) {
      const nDebug = debug !== null ? debug : countSeeds(opt.dataset.debugSeeds || "") || 0;
      const nHeldout = heldout !== null ? heldout : countSeeds(opt.dataset.heldoutSeeds || "") || 0;
      total += actorsPerTask * (rounds * perRound * nDebug + nHeldout);
    }
    return { total: total };
  }

  function render() {
    const e = estimate();
    if (e.total === undefined) {
      out.textContent = e.text + " Limit: " + cap.toLocaleString("en") + " episodes.";
      out.className = "muted";
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
