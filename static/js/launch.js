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

/* The program editor (single-task form): the chosen task's starter program in a CodeMirror editor
   (static/vendor/codemirror) with completion and hover docs from the API reference
   (/runs/editor/api.json, generated from worker.robot.api's docstrings) and the sandbox policy checked
   as you type (/runs/editor/check.json, debounced). Without the bundle, or without JS, the plain
   textarea still holds the starter program and the server checks the policy on launch. */
(function () {
  const textarea = document.getElementById("id_program");
  const select = document.querySelector("select[name=task]");
  if (!textarea || !select) return;
  const form = textarea.form;
  const radios = Array.from(form.querySelectorAll("input[name=program_source]"));
  const radio = function (value) { return radios.find(function (r) { return r.value === value; }); };
  const profileField = form.querySelector("[name=api_profile]");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]");
  let edited = radio("pasted") && radio("pasted").checked;

  const tools = document.createElement("div");
  tools.className = "program-tools";
  const reset = document.createElement("button");
  reset.type = "button";
  reset.className = "button";
  reset.id = "program-reset";
  reset.textContent = "Reset to the task's starter program";
  const status = document.createElement("div");
  status.id = "program-check";
  status.setAttribute("aria-live", "polite");
  tools.appendChild(reset);
  tools.appendChild(status);
  textarea.parentNode.insertBefore(tools, textarea.nextSibling);

  function showProblems(problems) {
    status.textContent = "";
    const errors = problems.filter(function (p) { return p.severity === "error"; });
    if (!problems.length) {
      status.className = "ok";
      status.textContent = "Policy check: OK.";
      return;
    }
    status.className = errors.length ? "bad" : "";
    status.appendChild(document.createTextNode(errors.length
      ? "The sandbox would refuse this program (" + errors.length + " problem" + (errors.length > 1 ? "s" : "") + "):"
      : "Warnings:"));
    const list = document.createElement("ul");
    for (const p of problems.slice(0, 8)) {
      const li = document.createElement("li");
      li.textContent = (p.line ? "line " + p.line + ": " : "") + p.message + (p.severity === "warning" ? " (warning)" : "");
      list.appendChild(li);
    }
    status.appendChild(list);
  }

  let lastChecked = null, lastResult = [];
  function check(text) {
    if (text === lastChecked) return Promise.resolve(lastResult);
    if (!text.trim()) { showProblems([]); status.textContent = ""; return Promise.resolve([]); }
    return fetch(textarea.dataset.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
      body: JSON.stringify({ program: text }),
    }).then(function (r) { return r.ok ? r.json() : { problems: [] }; }).then(function (doc) {
      lastChecked = text;
      lastResult = doc.problems || [];
      showProblems(lastResult);
      return lastResult;
    });
  }

  let editor = null;
  function setText(text) {
    if (editor) editor.setValue(text); else textarea.value = text;
    check(text).then(function () { if (editor) editor.relint(); });
  }
  function markEdited() {
    edited = true;
    if (radio("pasted")) radio("pasted").checked = true;
  }

  let timer = null;
  if (window.AspireCodeMirror) {
    editor = window.AspireCodeMirror.createEditor(textarea, {
      check: check,
      delay: 500,
      onChange: markEdited,
    });
  } else {
    textarea.addEventListener("input", function () {
      markEdited();
      clearTimeout(timer);
      timer = setTimeout(function () { check(textarea.value); }, 500);
    });
  }

  function loadReference() {
    if (!editor || !textarea.dataset.apiUrl) return;
    const opt = select.selectedOptions[0];
    const arms = opt && opt.dataset.arms === "2" ? "2" : "1";
    const profile = profileField && profileField.value === "published" ? "published" : "native";
    fetch(textarea.dataset.apiUrl + "?arms=" + arms + "&profile=" + profile, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { primitives: [] }; })
      .then(function (doc) { editor.setReference(doc.primitives); });
  }

  function loadStarter(force, initial) {
    const key = select.value;
    return fetch(textarea.dataset.starterUrl + "?task=" + encodeURIComponent(key), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc || doc.task !== select.value) return;
        if (initial && textarea.value.trim() && textarea.value.trim() !== doc.program.trim()) {
          markEdited();  /* a re-shown form keeps what was typed */
          check(textarea.value);
          return;
        }
        if (edited && !force) return;
        setText(doc.program);
        edited = false;
        if (doc.program && radio("starter")) radio("starter").checked = true;
        if (!doc.program && radio("pasted")) radio("pasted").checked = true;
      });
  }

  select.addEventListener("change", function () { loadStarter(false); loadReference(); });
  if (profileField) profileField.addEventListener("change", loadReference);
  reset.addEventListener("click", function () { loadStarter(true); });
  for (const r of radios) {
    r.addEventListener("change", function () { if (r.value === "starter" && r.checked) loadStarter(true); });
  }
  loadReference();
  if (edited) check(textarea.value); else loadStarter(false, true);
})();
