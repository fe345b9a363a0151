/* Run page: keep status, progress, leaderboard and per-seed rows current from the run's live stream.
   The server sends HTML fragments rendered from the same templates as the page itself. The run-health
   section (stall notice, worker pool) is also polled over HTTP every health_poll_s seconds: a stall is
   the absence of events, and the poll keeps working when the live stream (Redis) is down. */
"use strict";
(function () {
  const cfg = Aspire.config();
  let runSeq = cfg.run_seq;
  const TERMINAL = Aspire.STATUS.run_terminal;

  function status() {
    const s = document.getElementById("run-status");
    return s ? (s.dataset.status || s.textContent.trim()) : "";
  }

  function apply(fragments) {
    for (const f of fragments) {
      const tpl = document.createElement("template");
      tpl.innerHTML = f.html.trim();
      const node = tpl.content.firstElementChild;
      const old = document.getElementById(f.id);
      if (old) old.replaceWith(node);
      else if (f.parent) document.getElementById(f.parent).append(node);
    }
  }

  let healthTimer = null;
  function settle() {
    if (!TERMINAL.includes(status())) return false;
    const cancel = document.getElementById("cancel-form");
    if (cancel) cancel.remove();
    if (healthTimer) { clearInterval(healthTimer); healthTimer = null; }
    return true;
  }

  function pollHealth() {
    if (!cfg.health_url || document.hidden) return;
    fetch(cfg.health_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (h) {
        if (!h) return;
        apply([{ id: "run-health", html: h.html }]);
        if (!h.active && h.status && TERMINAL.includes(h.status) && !TERMINAL.includes(status())) {
          location.reload(); // ended while the live stream was away: show the final page
        }
      })
      .catch(function () { /* the server is away: the next poll tries again */ });
  }

  if (settle()) { document.getElementById("live-state").textContent = "ended"; return; }
  if (cfg.health_url) healthTimer = setInterval(pollHealth, 1000 * (cfg.health_poll_s || 10));
  let opened = 0;
  const socket = Aspire.liveSocket(cfg.ws, {
    // On a reconnect ("refresh") the server sends the current fragments whatever run_seq says: events
    // may have been missed while the socket was down, and the page must not keep a stale row.
    resume: function () { opened += 1; return { type: "resume", run_seq: runSeq, refresh: opened > 1 }; },
    onMessage: function (m) {
      if (m.type === "fragments") {
        apply(m.fragments);
        runSeq = Math.max(runSeq, m.run_seq);
        if (settle()) socket.close("ended");
      } else if (m.type === "call") {
        const row = document.getElementById("episode-row-" + m.episode);
        const cell = row && row.querySelector(".live-calls");
        if (cell) { cell.textContent = m.seq + " · " + m.primitive; cell.title = m.status + ", " + m.duration_ms.toFixed(1) + " ms"; }
      }
    },
  });
})();
