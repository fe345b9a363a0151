/* Trace explorer: the calls of one episode as a tree (helper functions of the program group the calls
   made inside them, from each call's stack) and as a timeline; status colours; filters; inline
   keyframes with a large view; before/after frames for motion and gripper calls; formatted arguments
   and results; deep links (#call-12 or ?call=12); new calls appended live, each exactly once. */
"use strict";
(function () {
  const E = Aspire.el;
  const cfg = Aspire.config();
  const OK = Aspire.STATUS.call.OK;
  const RUNNING = Aspire.STATUS.episode.RUNNING;
  const calls = new Map();          // seq -> call
  const rows = new Map();           // seq -> <li>
  const lineCalls = new Map();      // program line -> [seq]
  let episode = cfg.episode;
  let lastSeq = 0;
  let openPath = [];                // open helper groups, outermost first: {key, li, list, stats}
  let groupCount = 0;
  let pendingSelect = null;
  let socket = null;
  const list = document.getElementById("calls");
  const MOTION = /^(move_|open_gripper|close_gripper)/;
  const EAGER_THUMBS = 60;
  let thumbs = 0;

  /* ---------- formatting ---------- */
  function ms(v) { return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms"; }
  function isArraySummary(v) { return v && typeof v === "object" && !Array.isArray(v) && Array.isArray(v.shape) && typeof v.dtype === "string"; }
  function arrayLabel(v) {
    let s = v.dtype + "[" + v.shape.join("×") + "]";
    if (v.value !== undefined) s += " = " + JSON.stringify(v.value);
    else if (v.min !== undefined) s += "  " + v.min + " … " + v.max;
    else if (v.true !== undefined) s += "  " + v.true + " true";
    return s;
  }
  function jsonNode(v, depth) {
    if (v === null) return E("span", { class: "j-null", text: "null" });
    if (typeof v === "boolean") return E("span", { class: "j-bool", text: String(v) });
    if (typeof v === "number") return E("span", { class: "j-num", text: String(v) });
    if (typeof v === "string") return E("span", { class: "j-str", text: JSON.stringify(v) });
    if (isArraySummary(v)) return E("span", { class: "j-arr", text: arrayLabel(v) });
    const entries = Array.isArray(v) ? v.map(function (x, i) { return [i, x]; }) : Object.entries(v);
    if (Array.isArray(v) && v.every(function (x) { return x === null || typeof x !== "object"; }) && v.length <= 16) {
      return E("span", { class: "j-inline", text: JSON.stringify(v) });
    }
    if (!entries.length) return E("span", { class: "j-null", text: Array.isArray(v) ? "[]" : "{}" });
    const body = E("div", { class: "j-kv" }, entries.map(function (kv) {
      return E("div", {}, [E("span", { class: "j-key", text: kv[0] + ": " }), jsonNode(kv[1], depth + 1)]);
    }));
    const det = E("details", { open: depth < 2 }, [E("summary", { text: Array.isArray(v) ? "[" + v.length + " items]" : "{" + entries.length + " keys}" }), body]);
    return det;
  }
  function jsonBlock(title, v) {
    if (v === null || v === undefined || (typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length)) return null;
    return E("div", { class: "json-block" }, [E("h4", { text: title }), E("div", { class: "json" }, [jsonNode(v, 0)])]);
  }

  /* ---------- keyframes and the lightbox ---------- */
  function allFrames() {
    const out = [];
    for (const c of [...calls.values()].sort(function (a, b) { return a.seq - b.seq; })) {
      for (const k of c.keyframes) out.push({ kf: k, caption: "#" + c.seq + " " + c.primitive + " · " + k.kind + " · " + k.camera + " · " + k.label });
    }
    for (const k of (episode.final_keyframes || [])) out.push({ kf: k, caption: "final · " + k.camera });
    return out;
  }
  const lb = document.getElementById("lightbox");
  let lbIndex = 0, lbFrames = [];
  function openLightbox(kfId) {
    lbFrames = allFrames();
    lbIndex = Math.max(0, lbFrames.findIndex(function (f) { return f.kf.id === kfId; }));
    showLightbox();
    lb.hidden = false;
    lb.querySelector(".lb-close").focus();
  }
  function showLightbox() {
    const f = lbFrames[lbIndex];
    if (!f) return;
    document.getElementById("lightbox-img").src = f.kf.url;
    document.getElementById("lightbox-caption").textContent = f.caption + "  (" + (lbIndex + 1) + " of " + lbFrames.length + ")";
  }
  function step(d) { lbIndex = (lbIndex + d + lbFrames.length) % lbFrames.length; showLightbox(); }
  lb.addEventListener("click", function (e) {
    if (e.target.closest(".lb-prev")) step(-1);
    else if (e.target.closest(".lb-next")) step(1);
    else if (e.target === lb || e.target.closest(".lb-close")) lb.hidden = true;
  });
  document.addEventListener("keydown", function (e) {
    if (lb.hidden) return;
    if (e.key === "Escape") lb.hidden = true;
    else if (e.key === "ArrowLeft") step(-1);
    else if (e.key === "ArrowRight") step(1);
  });
  function figure(k, caption, extraClass) {
    return E("figure", { class: extraClass || "" }, [
      E("img", { class: "keyframe", src: k.url, alt: caption, width: k.width, height: k.height, "data-kf": k.id }),
      E("figcaption", { text: caption }),
    ]);
  }
  document.addEventListener("click", function (e) {
    const img = e.target.closest("img[data-kf]");
    if (img) { e.preventDefault(); e.stopPropagation(); openLightbox(Number(img.dataset.kf)); }
  }, true);

  /* Before = the call's own before-frame, else the latest camera frame from an earlier call (same camera
     when possible); after = the
     call's own frame, else the next one written (a later call's, or the episode's final frame). */
  let shownInPair = new Set();
  function beforeAfter(call) {
    shownInPair = new Set();
    if (!MOTION.test(call.primitive)) return null;
    const ordered = [...calls.values()].sort(function (a, b) { return a.seq - b.seq; });
    // A call's own "before" frame (motion and gripper calls record one) is never its after frame.
    const frameOf = function (c) { return c.keyframes.find(function (k) { return k.kind === "frame" && k.label !== "before"; }); };
    let after = frameOf(call), afterFrom = after ? call.seq : null;
    if (!after) {
      for (const c of ordered) if (c.seq > call.seq && frameOf(c)) { after = frameOf(c); afterFrom = c.seq; break; }
    }
    if (!after && episode.final_keyframes && episode.final_keyframes.length) { after = episode.final_keyframes[0]; afterFrom = "final"; }
    let before = null, beforeFrom = null, anyCamera = null;
    for (const c of ordered) {
      if (c.seq >= call.seq) break;
      for (const k of c.keyframes) {
        if (k.kind !== "frame") continue;
        anyCamera = { k: k, seq: c.seq };
        if (!after || k.camera === after.camera) { before = k; beforeFrom = c.seq; }
      }
    }
    if (!before && anyCamera) { before = anyCamera.k; beforeFrom = anyCamera.seq; }
    const own = call.keyframes.find(function (k) { return k.kind === "frame" && k.label === "before"; });
    if (own) { before = own; beforeFrom = call.seq; }
    if (!before && !after) return null;
    shownInPair.add(after && after.id).add(before && before.id);
    const side = function (k, label, from) {
      return k ? figure(k, label + (from === call.seq ? " (this call)" : from === "final" ? " (final frame)" : " (from #" + from + ")"))
               : E("div", { class: "no-frame", text: label + ": no frame recorded" });
    };
    return E("div", { class: "before-after" }, [E("h4", { text: "Before / after" }),
      E("div", { class: "pair" }, [side(before, "before", beforeFrom), side(after, "after", afterFrom)])]);
  }

  /* ---------- the tree ---------- */
  function pathOf(call) {
    const st = call.stack || [];
    const out = [];
    for (let i = 1; i < st.length; i++) out.push({ key: st[i][0] + "@" + st[i - 1][1], fn: st[i][0], from: st[i - 1][1] });
    return out;
  }
  function groupNode(p) {
    groupCount += 1;
    const stats = E("span", { class: "group-stats muted" });
    const head = E("div", { class: "group-head", tabindex: "0" }, [
      E("span", { class: "twisty", text: "▾" }), E("code", { class: "fn", text: p.fn + "()" }),
      E("span", { class: "muted", text: "called at line " + p.from }), stats]);
    const children = E("ol", { class: "children" });
    const li = E("li", { class: "group", id: "group-" + groupCount, "data-line": p.from }, [head, children]);
    return { key: p.key, li: li, list: children, statsEl: stats, n: 0, ms: 0, bad: 0 };
  }
  function updateGroup(g, call) {
    g.n += 1; g.ms += call.duration_ms; if (call.status !== OK) g.bad += 1;
    g.statsEl.textContent = g.n + " call" + (g.n === 1 ? "" : "s") + " · " + ms(g.ms) + (g.bad ? " · " + g.bad + " not OK" : "");
    g.li.classList.toggle("has-failure", g.bad > 0);
  }
  function callRow(call) {
    // The label (name, status, line, thumbnails) takes what is left; the bar and the duration are
    // fixed-width columns at the row's right edge, so every bar, at any nesting depth and whatever the
    // name's length, is drawn on one time axis: the episode's, from its start (set-up included).
    const label = E("span", { class: "call-label" }, [
      E("span", { class: "twisty", text: "▸" }),
      E("span", { class: "seq", text: "#" + call.seq }),
      E("code", { class: "primitive", text: call.primitive }),
      E("span", { class: "status status-" + call.status, text: call.status }),
      E("a", { class: "line-ref muted", href: "#L" + call.line, text: "L" + call.line, title: "program line" }),
    ]);
    for (const k of call.keyframes.slice(0, 3)) {
      thumbs += 1;
      label.append(E("img", { class: "keyframe thumb", src: k.url, alt: k.kind + " " + k.camera + " " + k.label,
        width: k.width, height: k.height, loading: thumbs > EAGER_THUMBS ? "lazy" : null, "data-kf": k.id }));
    }
    const head = E("div", { class: "call-head", tabindex: "0" }, [
      label,
      E("span", { class: "bar-wrap", title: "when it ran in the episode (the whole track is the episode)" }, [E("span", { class: "bar" })]),
      E("span", { class: "dur", text: ms(call.duration_ms) }),
    ]);
    const li = E("li", { class: "call st-" + call.status + (call.status === OK ? "" : " not-ok"), id: "call-" + call.seq, "data-seq": call.seq }, [head]);
    if (call.error || (call.status !== OK && call.message)) li.append(E("p", { class: "call-note " + (call.error ? "error-text" : "message"), text: call.error || call.message }));
    return li;
  }
  function callBody(call) {
    const t0 = span().t0;
    const crumbs = (call.stack || []).map(function (f) { return f[0] + ":" + f[1]; }).join(" › ");
    const body = E("div", { class: "call-body" }, [
      E("p", { class: "meta muted" }, [
        "started +" + ((Date.parse(call.started_at) - t0) / 1000).toFixed(3) + " s into the episode · " + ms(call.duration_ms) + " · sim t=" + call.sim_time.toFixed(2) + " s · ",
        E("span", { text: crumbs }), " · ",
        E("a", { href: "#call-" + call.seq, class: "deep-link", text: "link to this call" })]),
      call.message ? E("p", { class: "message", text: call.message }) : null,
      call.error ? E("pre", { class: "error-text", text: call.error }) : null,
      beforeAfter(call),
      ownFrames(call),
      E("div", { class: "json-grid" }, [jsonBlock("Arguments", call.args), jsonBlock("Result", call.result), jsonBlock("Artifacts", call.artifacts)]),
    ]);
    return body;
  }
  function ownFrames(call) {
    const rest = call.keyframes.filter(function (k) { return !shownInPair.has(k.id); });  // not twice
    return rest.length ? E("div", { class: "keyframes" }, rest.map(function (k) { return figure(k, k.kind + " · " + k.camera + " · " + k.label); })) : null;
  }
  function toggleCall(seq, open) {
    const li = rows.get(seq);
    if (!li) return;
    const body = li.querySelector(":scope > .call-body");
    const want = open === undefined ? !body : open;
    if (want && !body) li.append(callBody(calls.get(seq)));
    if (!want && body) body.remove();
    li.classList.toggle("expanded", want);
  }
  function addCall(call, committedAt) {
    if (calls.has(call.seq)) return;     // a replay overlapping what is shown: already here
    calls.set(call.seq, call);
    lastSeq = Math.max(lastSeq, call.seq);
    const path = pathOf(call);
    let k = 0;
    while (k < openPath.length && k < path.length && openPath[k].key === path[k].key) k++;
    openPath = openPath.slice(0, k);
    for (let i = k; i < path.length; i++) {
      const g = groupNode(path[i]);
      (openPath.length ? openPath[openPath.length - 1].list : list).append(g.li);
      openPath.push(g);
    }
    const li = callRow(call);
    rows.set(call.seq, li);
    (openPath.length ? openPath[openPath.length - 1].list : list).append(li);
    for (const g of openPath) updateGroup(g, call);
    if (!lineCalls.has(call.line)) lineCalls.set(call.line, []);
    lineCalls.get(call.line).push(call.seq);
    markLine(call.line);
    noteOption("filter-status", call.status);
    noteOption("filter-primitive", call.primitive);
    applyFilter(li);
    if (committedAt) Aspire.liveStats.push({ seq: call.seq, committed_at: committedAt, shown_at: Date.now() / 1000 });
    if (pendingSelect === call.seq) select(call.seq);
  }

  /* ---------- program listing ---------- */
  function markLine(n) {
    const line = document.getElementById("L" + n);
    if (!line) return;
    const seqs = lineCalls.get(n) || [];
    const failing = seqs.some(function (s) { return calls.get(s).status !== OK; });
    line.classList.add("called-line");
    line.classList.toggle("failing-line", failing);
    line.querySelector(".hits").textContent = seqs.length > 1 ? "×" + seqs.length : "•";
  }
  function highlightLine(n) {
    document.querySelectorAll("#program .line.current").forEach(function (l) { l.classList.remove("current"); });
    const line = document.getElementById("L" + n);
    if (!line) return;
    line.classList.add("current");
    // Scroll the listing box only: scrolling the window would pull the selected call out of view.
    const box = document.getElementById("program");
    box.scrollTop = Math.max(0, line.offsetTop - box.offsetTop - box.clientHeight / 3);
  }
  document.getElementById("program").addEventListener("click", function (e) {
    const line = e.target.closest(".line");
    const seqs = line && lineCalls.get(Number(line.dataset.line));
    if (seqs && seqs.length) select(seqs[0], true);
  });

  /* ---------- selection and deep links ---------- */
  function select(seq, updateUrl) {
    const li = rows.get(seq);
    if (!li) { pendingSelect = seq; return; }
    pendingSelect = null;
    if (li.hidden) clearFilters();
    for (let p = li.parentElement.closest(".group"); p; p = p.parentElement.closest(".group")) p.classList.remove("collapsed");
    showView("tree");
    document.querySelectorAll(".call.selected").forEach(function (x) { x.classList.remove("selected"); });
    li.classList.add("selected");
    toggleCall(seq, true);
    highlightLine(calls.get(seq).line);
    li.scrollIntoView({ block: "start" });
    if (updateUrl) history.replaceState(null, "", "#call-" + seq);
  }
  function requestedCall() {
    const q = new URLSearchParams(location.search).get("call");
    const m = /^#call-(\d+)$/.exec(location.hash);
    return q && /^\d+$/.test(q) ? Number(q) : m ? Number(m[1]) : null;
  }
  list.addEventListener("click", function (e) {
    if (e.target.closest("a, img, .call-body")) return;
    const gh = e.target.closest(".group-head");
    if (gh) { gh.parentElement.classList.toggle("collapsed"); return; }
    const ch = e.target.closest(".call-head");
    if (ch) {
      const seq = Number(ch.parentElement.dataset.seq);
      const opening = !ch.parentElement.classList.contains("expanded");
      toggleCall(seq, opening);
      if (opening) { document.querySelectorAll(".call.selected").forEach(function (x) { x.classList.remove("selected"); }); ch.parentElement.classList.add("selected"); highlightLine(calls.get(seq).line); history.replaceState(null, "", "#call-" + seq); }
    }
  });
  list.addEventListener("keydown", function (e) {
    if ((e.key === "Enter" || e.key === " ") && e.target.matches(".call-head, .group-head")) { e.preventDefault(); e.target.click(); }
  });
  window.addEventListener("hashchange", function () { const s = requestedCall(); if (s) select(s); });
  // Keyboard: j / k step through the visible calls, "/" focuses the filter, Escape leaves it.
  document.addEventListener("keydown", function (e) {
    if (!lb.hidden || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.matches("input, select, textarea")) { if (e.key === "Escape") e.target.blur(); return; }
    if (e.key === "/") { e.preventDefault(); fText.focus(); return; }
    if (e.key !== "j" && e.key !== "k") return;
    const visible = [...rows.values()].filter(function (li) { return !li.hidden; });
    if (!visible.length) return;
    const current = visible.findIndex(function (li) { return li.classList.contains("selected"); });
    const next = current < 0 ? 0 : Math.min(visible.length - 1, Math.max(0, current + (e.key === "j" ? 1 : -1)));
    if (current >= 0) toggleCall(Number(visible[current].dataset.seq), false);
    select(Number(visible[next].dataset.seq), true);
  });

  /* ---------- filters ---------- */
  const fText = document.getElementById("filter-text"), fStatus = document.getElementById("filter-status"), fPrim = document.getElementById("filter-primitive");
  const haystack = new Map();
  function noteOption(id, value) {
    const sel = document.getElementById(id);
    if ([...sel.options].some(function (o) { return o.value === value; })) return;
    sel.append(E("option", { value: value, text: value }));
  }
  function matches(call) {
    const st = fStatus.value, pr = fPrim.value, text = fText.value.trim().toLowerCase();
    if (st === "!OK" ? call.status === OK : st && call.status !== st) return false;
    if (pr && call.primitive !== pr) return false;
    if (text) {
      if (!haystack.has(call.seq)) haystack.set(call.seq, [call.primitive, call.status, call.message, call.error, "L" + call.line,
        JSON.stringify(call.args), JSON.stringify(call.result), JSON.stringify(call.stack)].join(" ").toLowerCase());
      if (!haystack.get(call.seq).includes(text)) return false;
    }
    return true;
  }
  function filtering() { return Boolean(fText.value.trim() || fStatus.value || fPrim.value); }
  function applyFilter(onlyRow) {
    const targets = onlyRow ? [onlyRow] : [...rows.values()];
    for (const li of targets) li.hidden = !matches(calls.get(Number(li.dataset.seq)));
    list.querySelectorAll(".group").forEach(function (g) {
      g.hidden = !g.querySelector(".call:not([hidden])");
      if (filtering() && !onlyRow) g.classList.remove("collapsed");
    });
    const shown = [...rows.values()].filter(function (li) { return !li.hidden; }).length;
    document.getElementById("filter-count").textContent = filtering() ? shown + " of " + rows.size + " calls" : rows.size + " calls";
    document.getElementById("calls-empty").hidden = rows.size > 0;
    if (!document.getElementById("timeline").hidden) scheduleTimeline();
  }
  function clearFilters() { fText.value = ""; fStatus.value = ""; fPrim.value = ""; applyFilter(); }
  [fText, fStatus, fPrim].forEach(function (x) { x.addEventListener("input", function () { applyFilter(); }); });
  document.getElementById("expand-all").addEventListener("click", function () {
    list.querySelectorAll(".group").forEach(function (g) { g.classList.remove("collapsed"); });
    for (const [seq, li] of rows) if (!li.hidden) toggleCall(seq, true);
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    for (const seq of rows.keys()) toggleCall(seq, false);
    list.querySelectorAll(":scope > .group").forEach(function (g) { g.classList.add("collapsed"); });
  });

  /* ---------- waterfall bars and the timeline ---------- */
  function firstStart() {
    let t = Infinity;
    for (const c of calls.values()) t = Math.min(t, Date.parse(c.started_at));
    return t;
  }
  /* The episode's time axis: from its start (so the set-up before the first call shows) to its end, or
     to the latest call's end while it runs. */
  function episodeStart() {
    const t = episode && episode.started_at ? Date.parse(episode.started_at) : NaN;
    return isNaN(t) ? null : t;
  }
  function setupMs() {
    const start = episodeStart(), first = firstStart();
    return start === null || !isFinite(first) ? null : Math.max(0, first - start);
  }
  function span() {
    const first = firstStart(), start = episodeStart();
    const t0 = start !== null && (!isFinite(first) || start <= first) ? start : first;
    let end = t0;
    for (const c of calls.values()) end = Math.max(end, Date.parse(c.started_at) + c.duration_ms);
    const fin = episode && episode.finished_at ? Date.parse(episode.finished_at) : NaN;
    if (!isNaN(fin) && episode.status !== RUNNING) end = Math.max(end, fin);
    return { t0: t0, total: Math.max(1, end - t0) };
  }
  function showSetup() {
    const el = document.getElementById("episode-setup");
    const empty = document.getElementById("calls-empty");
    const setup = setupMs();
    const running = episode.status === RUNNING;
    if (empty) empty.textContent = running ? "Setting up (loading simulator/models)… the first call appears here when the program makes it." : "No calls recorded.";
    if (!el) return;
    if (setup !== null) el.textContent = ms(setup) + " from the episode's start to its first call (simulator and models loading)";
    else el.textContent = running ? "setting up (loading simulator/models)…" : "–";
    el.classList.toggle("setting-up", setup === null && running);
  }
  let barsQueued = false;
  function scheduleBars() {
    if (barsQueued) return;
    barsQueued = true;
    requestAnimationFrame(function () {
      barsQueued = false;
      const s = span();
      for (const [seq, li] of rows) {
        const c = calls.get(seq), bar = li.querySelector(".bar");
        bar.style.left = (100 * (Date.parse(c.started_at) - s.t0) / s.total).toFixed(2) + "%";
        bar.style.width = Math.max(0.4, 100 * c.duration_ms / s.total).toFixed(2) + "%";
      }
    });
  }
  let timelineQueued = false;
  function scheduleTimeline() {
    if (timelineQueued) return;
    timelineQueued = true;
    requestAnimationFrame(function () { timelineQueued = false; renderTimeline(); });
  }
  function renderTimeline() {
    const box = document.getElementById("timeline");
    const s = span();
    const visible = [...calls.values()].filter(matches).sort(function (a, b) { return a.seq - b.seq; });
    const axis = E("div", { class: "tl-axis" }, [0, 0.25, 0.5, 0.75, 1].map(function (f) {
      return E("span", { style: "left:" + f * 100 + "%", text: (s.total * f / 1000).toFixed(2) + " s" });
    }));
    const setup = setupMs();
    const setupLane = setup ? [E("div", { class: "tl-setup", title: "set-up: from the episode's start to its first call" }, [
      E("span", { class: "tl-label", text: "set-up" }),
      E("span", { class: "tl-track" }, [E("span", { class: "tl-bar tl-setup-bar", style: "left:0;width:" + Math.max(0.3, 100 * setup / s.total).toFixed(2) + "%" })]),
      E("span", { class: "tl-dur", text: ms(setup) })])] : [];
    const lanes = E("div", { class: "tl-rows" }, setupLane.concat(visible.map(function (c) {
      return E("div", { class: "tl-row", "data-seq": c.seq, title: "#" + c.seq + " " + c.primitive + " " + c.status + " " + ms(c.duration_ms) }, [
        E("span", { class: "tl-label", text: "#" + c.seq + " " + c.primitive }),
        E("span", { class: "tl-track" }, [E("span", { class: "tl-bar st-" + c.status,
          style: "left:" + (100 * (Date.parse(c.started_at) - s.t0) / s.total).toFixed(2) + "%;width:" + Math.max(0.3, 100 * c.duration_ms / s.total).toFixed(2) + "%" })]),
        E("span", { class: "tl-dur", text: ms(c.duration_ms) })]);
    })));
    const slow = [...visible].sort(function (a, b) { return b.duration_ms - a.duration_ms; }).slice(0, 10);
    const byPrim = new Map();
    for (const c of visible) { const v = byPrim.get(c.primitive) || [0, 0]; byPrim.set(c.primitive, [v[0] + 1, v[1] + c.duration_ms]); }
    const totals = [...byPrim.entries()].sort(function (a, b) { return b[1][1] - a[1][1]; });
    box.replaceChildren(E("div", { class: "tl-chart" }, [axis, lanes]),
      E("div", { class: "tl-tables" }, [
        E("table", { class: "grid compact" }, [E("caption", { text: "Slowest calls" }), E("tbody", {}, slow.map(function (c) {
          return E("tr", { class: "tl-row", "data-seq": c.seq }, [E("td", { text: "#" + c.seq }), E("td", { text: c.primitive }), E("td", { text: ms(c.duration_ms) })]);
        }))]),
        E("table", { class: "grid compact" }, [E("caption", { text: "Time per primitive" }), E("tbody", {}, totals.map(function (t) {
          return E("tr", {}, [E("td", { text: t[0] }), E("td", { text: t[1][0] + "×" }), E("td", { text: ms(t[1][1]) + " (" + (100 * t[1][1] / s.total).toFixed(0) + "%)" })]);
        }))]),
      ]));
  }
  document.getElementById("timeline").addEventListener("click", function (e) {
    const r = e.target.closest(".tl-row[data-seq]");
    if (r) select(Number(r.dataset.seq), true);
  });
  function showView(view) {
    document.querySelectorAll(".tabs .tab").forEach(function (t) { t.classList.toggle("active", t.dataset.view === view); });
    list.hidden = view !== "tree";
    document.getElementById("timeline").hidden = view !== "timeline";
    if (view === "timeline") renderTimeline();
  }
  document.querySelectorAll(".tabs .tab").forEach(function (t) {
    t.addEventListener("click", function () {
      showView(t.dataset.view);
      document.querySelector(".calls-pane").scrollIntoView({ block: "start" });
    });
  });

  /* ---------- the episode ---------- */
  function showEpisode(ep) {
    episode = ep;
    const st = document.getElementById("episode-status");
    st.textContent = ep.status; st.className = "status status-" + ep.status;
    document.getElementById("episode-outcome").replaceChildren(ep.success === true ? E("span", { class: "ok", text: "success" })
      : ep.success === false ? E("span", { class: "fail", text: "failure" }) : "");
    if (ep.status !== RUNNING) {
      document.getElementById("episode-duration").textContent = ep.duration_s.toFixed(2) + " s wall, " + ep.sim_time.toFixed(2) + " s simulated, " + ep.n_calls + " calls";
      document.getElementById("episode-error").textContent = ep.error || "–";
      document.querySelectorAll("#program .error-line").forEach(function (l) { l.classList.remove("error-line"); });
      const errLine = ep.error_line && document.getElementById("L" + ep.error_line);
      if (errLine) errLine.classList.add("error-line");
    }
    const finals = document.getElementById("final-frames");
    finals.hidden = !(ep.final_keyframes || []).length;
    finals.querySelector(".keyframes").replaceChildren(...(ep.final_keyframes || []).map(function (k) { return figure(k, k.camera + " at the end"); }));
    showSetup();
    scheduleBars();
  }
  function reset() {
    calls.clear(); rows.clear(); lineCalls.clear(); haystack.clear();
    openPath = []; lastSeq = 0; list.replaceChildren();
    document.querySelectorAll("#program .line").forEach(function (l) { l.classList.remove("called-line", "failing-line", "current"); l.querySelector(".hits").textContent = ""; });
  }

  for (const c of cfg.calls) addCall(c, null);
  showEpisode(episode);
  applyFilter();
  scheduleBars();
  const wanted = requestedCall();
  if (wanted) select(wanted);

  if (episode.status === RUNNING) {
    socket = Aspire.liveSocket(cfg.ws, {
      resume: function () { return { type: "resume", after: lastSeq }; },
      onMessage: function (m) {
        handle(m);
        // Until the first call arrives the episode is still starting its simulator and models: say so
        // rather than "live" over an empty list.
        const st = document.getElementById("live-state");
        if (episode.status === RUNNING && st) {
          st.textContent = rows.size ? "live" : "live · setting up (loading simulator/models)";
          st.className = "live-state " + (rows.size ? "on" : "wait setting-up");
        }
      },
    });
  } else {
    document.getElementById("live-state").textContent = "finished";
  }
  function handle(m) {
    if (m.type === "calls") {
      for (const c of m.calls) addCall(c, m.committed_at);
      scheduleBars();
      showSetup();
      document.getElementById("filter-count").textContent = filtering() ? document.getElementById("filter-count").textContent : rows.size + " calls";
      document.getElementById("calls-empty").hidden = rows.size > 0;
    } else if (m.type === "episode") {
      showEpisode(m.episode);
      if (m.episode.status !== RUNNING) socket.close("finished");
    } else if (m.type === "reset") {
      reset();
    }
  }
})();
