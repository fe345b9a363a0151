/* Launch forms: filter the task catalog as you type and describe the chosen task (instruction, cameras,
   arms, seed split) from the options' data-* attributes. Works on the single-task and experiment forms. */
"use strict";
(function () {
  const select = document.querySelector("select[name=task], select[name=tasks]");
  if (!select) return;
  const seeds = document.getElementById("id_seeds");
  let seedsEdited = false;
  if (seeds) seeds.addEventListener("input", function () { seedsEdited = true; });

  const filter = document.createElement("input");
  filter.type = "search";
  filter.id = "task-filter";
  filter.placeholder = "Filter tasks: suite, name or words of the instruction";
  filter.setAttribute("aria-label", "Filter tasks");
  select.parentNode.insertBefore(filter, select);

  const info = document.createElement("div");
  info.id = "task-info";
  info.className = "task-info muted";
  select.parentNode.insertBefore(info, select.nextSibling);

  filter.addEventListener("input", function () {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const group of select.querySelectorAll("optgroup")) {
      let any = false;
      for (const opt of group.querySelectorAll("option")) {
        const text = (group.label + " " + opt.value + " " + opt.dataset.instruction).toLowerCase();
        const match = words.every(function (w) { return text.includes(w); });
        opt.hidden = !match;
        any = any || match;
        if (match) shown += 1;
      }
      group.hidden = !any;
    }
    filter.title = shown + " tasks match";
  });

  function describe(changed) {
    const chosen = Array.from(select.selectedOptions);
    info.textContent = "";
    if (chosen.length !== 1) {
      if (chosen.length > 1) info.textContent = chosen.length + " tasks chosen.";
      return;
    }
    const d = chosen[0].dataset;
    const lines = [
      ["Instruction", d.instruction],
      ["Cameras", d.cameras],
      ["Arms", d.arms],
      ["Debug seeds", d.debugSeeds],
      ["Held-out seeds", d.heldoutSeeds],
      ["Starter program", d.starter ? "yes" : "none: paste a program"],
    ];
    for (const [k, v] of lines) {
      const row = document.createElement("div");
      const b = document.createElement("b");
      b.textContent = k + ": ";
      row.appendChild(b);
      row.appendChild(document.createTextNode(v));
      info.appendChild(row);
    }
    if (changed && seeds && !seedsEdited && d.debugSeeds) {
      /* The first three debug seeds: a quick look; "debug" or "heldout" runs a whole split. */
      const first = d.debugSeeds.split(",")[0].split("-");
      const lo = parseInt(first[0], 10), hi = parseInt(first[first.length - 1], 10);
      seeds.value = lo === Math.min(hi, lo + 2) ? String(lo) : lo + "-" + Math.min(hi, lo + 2);
    }
  }
  select.addEventListener("change", function () { describe(true); });
  describe(false);
})();
