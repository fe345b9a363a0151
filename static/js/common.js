/* Shared by every page: the live socket (resume + reconnect), copy buttons, confirmations. No dependencies. */
"use strict";
window.Aspire = (function () {
  function config() {
    const el = document.getElementById("page-config");
    return el ? JSON.parse(el.textContent) : {};
  }

  // The status values (worker/robot/status.py and Run.Status), rendered by {% status_vocabulary %} in base.html.
  const STATUS = JSON.parse(document.getElementById("status-vocabulary").textContent);

  function setLiveState(text, cls) {
    const el = document.getElementById("live-state");
    if (el) { el.textContent = text; el.className = "live-state " + cls; }
  }

  /* Open a websocket to `path` and keep it open. On every (re)connect, send resume() (what the page
     already shows) so the server replays exactly what was missed. Stops after close(), after the server
     ends access (code 4403), or after many failed attempts in a row. */
  function liveSocket(path, opts) {
    let attempt = 0, ws = null, stopped = false, everOpened = false;
    function open() {
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
      ws.onopen = function () {
        attempt = 0;
        everOpened = true;
        setLiveState("live", "on");
        ws.send(JSON.stringify(opts.resume()));
      };
      ws.onmessage = function (e) { opts.onMessage(JSON.parse(e.data)); };
      ws.onclose = function (e) {
        if (stopped) return;
        if (e.code === 4403) { stopped = true; setLiveState("access ended", "off"); return; }
        attempt += 1;
        if (!everOpened && attempt >= 3) {
          // No websocket here at all (a WSGI-only server, a proxy without upgrades): reload instead.
          setLiveState("no live connection: reloading every 5 s", "wait");
          setTimeout(function () { location.reload(); }, 5000);
          return;
        }
        if (attempt > 12) { setLiveState("offline: reload the page", "off"); return; }
        const delay = Math.min(15000, 400 * Math.pow(2, Math.min(attempt, 6))) * (0.75 + Math.random() / 2);
        setLiveState("reconnecting…", "wait");
        setTimeout(open, delay);
      };
    }
    open();
    return {
      close: function (label) { stopped = true; setLiveState(label || "ended", "off"); if (ws) ws.close(); },
    };
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of [].concat(children || [])) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  document.addEventListener("click", function (e) {
    const copy = e.target.closest("[data-copy]");
    if (copy) {
      const src = document.querySelector(copy.dataset.copy);
      const text = src.value !== undefined ? src.value : src.textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { copy.textContent = "Copied"; });
    }
    const confirmer = e.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.dataset.confirm)) e.preventDefault();
  });

  return { config: config, liveSocket: liveSocket, el: el, liveStats: [], STATUS: STATUS };
})();
