/* Episode player on the trace page (templates/runs/_player.html): the episode's recording with a
   scrubber synced to the call list. Clicking a call (or a span above the scrubber) seeks to where the
   call starts; while the video plays, or when the scrubber moves, the call at that moment is
   highlighted (.playing) and, while playing, scrolled into view. ◀| / |▶ (or "," / ".") step one frame.
   Call spans come from the recording's index: [seq, t_start, t_end] in video seconds. */
"use strict";
(function () {
  const cfgNode = document.getElementById("player-config");
  if (!cfgNode) return;
  const cfg = JSON.parse(cfgNode.textContent);
  const video = document.getElementById("player-video");
  const scrub = document.getElementById("player-scrub");
  const playBtn = document.getElementById("player-play");
  const timeLabel = document.getElementById("player-time");
  const nowLabel = document.getElementById("player-now");
  const spansBox = document.getElementById("player-spans");
  const list = document.getElementById("calls");
  const fps = cfg.fps || 2;
  const frame = 1 / fps;
  const spans = (cfg.calls || []).map(function (c) { return { seq: c[0], t0: c[1], t1: c[2] }; });
  const bySeq = new Map(spans.map(function (s) { return [s.seq, s]; }));
  const pageCalls = new Map();
  try {
    for (const c of JSON.parse(document.getElementById("page-config").textContent).calls || []) pageCalls.set(c.seq, c);
  } catch (e) { /* the spans still work without names */ }
  let duration = cfg.duration || 0;
  let current = null;

  function nameOf(seq) { const c = pageCalls.get(seq); return "#" + seq + (c ? " " + c.primitive : ""); }

  /* The call at video time t: one whose span holds t (the latest to start), else the latest that
     started before t (calls that moved nothing span no time). */
  function callAt(t) {
    let found = null, last = null;
    for (const s of spans) {
      if (s.t0 > t + 1e-6) break;
      last = s;
      if (s.t1 > s.t0 && t < s.t1 - 1e-6) found = s;
    }
    return found || last;
  }

  function highlight(follow) {
    const t = video.currentTime;
    scrub.value = String(t);
    timeLabel.textContent = t.toFixed(1) + " / " + duration.toFixed(1) + " s";
    const s = callAt(t);
    const seq = s ? s.seq : null;
    if (seq === current) return;
    if (current !== null) {
      const old = document.getElementById("call-" + current);
      if (old) old.classList.remove("playing");
      const oldSpan = spansBox.querySelector('[data-seq="' + current + '"]');
      if (oldSpan) oldSpan.classList.remove("current");
    }
    current = seq;
    nowLabel.textContent = s ? "Now: " + nameOf(seq) : "";
    if (seq === null) return;
    const span = spansBox.querySelector('[data-seq="' + seq + '"]');
    if (span) span.classList.add("current");
    const li = document.getElementById("call-" + seq);
    if (li) {
      li.classList.add("playing");
      if (follow && !li.hidden) li.scrollIntoView({ block: "nearest" });
    }
  }

  function seek(t) {
    video.currentTime = Math.max(0, Math.min(t, duration || t));
    highlight(false);
  }
  /* A call's start: a hair past its first frame, so that frame (not the one before) is shown. */
  function seekCall(seq) {
    const s = bySeq.get(seq);
    if (s) seek(s.t0 + Math.min(0.01, frame / 4));
  }

  function drawSpans() {
    if (!duration) return;
    spansBox.replaceChildren();
    for (const s of spans) {
      if (s.t1 <= s.t0) continue;
      const el = document.createElement("span");
      el.className = "player-span";
      el.dataset.seq = s.seq;
      el.title = nameOf(s.seq) + " · " + s.t0.toFixed(1) + "–" + s.t1.toFixed(1) + " s";
      el.style.left = (100 * s.t0 / duration) + "%";
      el.style.width = Math.max(0.4, 100 * (s.t1 - s.t0) / duration) + "%";
      spansBox.append(el);
    }
  }

  video.addEventListener("loadedmetadata", function () {
    if (isFinite(video.duration) && video.duration > 0) duration = video.duration;
    scrub.max = String(duration);
    drawSpans();
    highlight(false);
  });
  video.addEventListener("timeupdate", function () { highlight(!video.paused); });
  video.addEventListener("play", function () { playBtn.textContent = "❚❚"; playBtn.setAttribute("aria-label", "Pause"); });
  video.addEventListener("pause", function () { playBtn.textContent = "▶"; playBtn.setAttribute("aria-label", "Play"); });
  video.addEventListener("ended", function () { highlight(false); });
  playBtn.addEventListener("click", function () { if (video.paused) video.play(); else video.pause(); });
  video.addEventListener("click", function () { if (video.paused) video.play(); else video.pause(); });
  scrub.addEventListener("input", function () { video.pause(); seek(Number(scrub.value)); });
  function stepFrame(d) { video.pause(); seek(Math.round(video.currentTime / frame + d) * frame + Math.min(0.01, frame / 4)); }
  document.getElementById("player-prev").addEventListener("click", function () { stepFrame(-1); });
  document.getElementById("player-next").addEventListener("click", function () { stepFrame(1); });
  document.addEventListener("keydown", function (e) {
    if (e.target.closest("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ",") stepFrame(-1);
    else if (e.key === ".") stepFrame(1);
  });
  spansBox.addEventListener("click", function (e) {
    const el = e.target.closest(".player-span");
    if (!el) return;
    video.pause();
    seekCall(Number(el.dataset.seq));
    const li = document.getElementById("call-" + el.dataset.seq);
    if (li) li.scrollIntoView({ block: "nearest" });
  });
  // Clicking a call in the list (its head; Enter on a focused head clicks it) jumps to its start.
  if (list) {
    list.addEventListener("click", function (e) {
      const head = e.target.closest(".call-head");
      if (!head || e.target.closest("a, img")) return;
      video.pause();
      seekCall(Number(head.parentElement.dataset.seq));
    });
  }
  if (video.readyState >= 1) video.dispatchEvent(new Event("loadedmetadata"));
})();
