/* Actor page: live without reloading. The run's live stream (ws/runs/<run>/) says when anything of the
   run changed (an episode settled, a round began, the run ended, cancel); the page then fetches itself
   and swaps #actor-live and the status badge, keeping open sections open and the scroll position. On a
   reconnect the server's snapshot triggers the same refetch, so nothing stays stale. */
"use strict";
(function () {
  const cfg = Aspire.config();
  let timer = null, inFlight = false, again = false, socket = null;

  function openIds() {
    return Array.from(document.querySelectorAll("#actor-live details[id]")).map(function (d) {
      return [d.id, d.open];
    });
  }

  function refetch() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    const keep = openIds();
    fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("actor-live");
        const status = doc.getElementById("actor-status");
        if (!fresh) return;
        const y = window.scrollY;
        document.getElementById("actor-live").replaceWith(fresh);
        if (status) document.getElementById("actor-status").replaceWith(status);
        for (const [id, open] of keep) {
          const d = document.getElementById(id);
          if (d) d.open = open;
        }
        window.scrollTo(0, y);
        const cfgNow = doc.getElementById("page-config");
        if (cfgNow && JSON.parse(cfgNow.textContent).terminal && socket) socket.close("ended");
      })
      .catch(function () { /* the server is away: the next event or reconnect tries again */ })
      .finally(function () {
        inFlight = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refetch(); }, 400);
  }

  let opened = 0;
  socket = Aspire.liveSocket(cfg.ws, {
    // Always ask for the current state: the reply (fragments) is the cue to refetch this page.
    resume: function () { opened += 1; return { type: "resume", refresh: true }; },
    onMessage: function (m) { if (m.type === "fragments") schedule(); },
  });
})();
