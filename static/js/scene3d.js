/* 3D view of an episode on the trace page (templates/runs/_scene3d.html; data: worker/robot/scene3d.py).
   Nothing heavy loads with the page: three.js (static/vendor/three) and the episode's 3D data are
   fetched the first time the section is opened. The scene is in the robot API's world frame (robot
   base, metres, z up): each get_observation's point clouds (their colours), the segmentation masks'
   points (one colour per prompt; amber: points a program back-projected itself), grasp candidates
   as gripper glyphs (the best red, the others faint blue), motion targets as translucent gripper
   ghosts (green), planned gripper paths dashed (orange) and the executed path solid (cyan), a grid
   at the table's height and the world axes.
   Clicking a call in the call list (or following a #call-N link) picks it: its items stay bright and
   the rest dim, and a white ghost shows the gripper where that call left it; "Whole episode" shows
   all alike. Below, the joint angles over simulated time (one line per joint) with the picked call
   shaded; clicking the chart picks the call at that moment.
   State for tests: #scene3d[data-state="rendered"], data-points (scene points drawn), data-selected. */

const root = document.getElementById("scene3d");
const JOINT_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0aa5a5", "#b8860b"];
const LAYERS = [
  ["scene", "Point clouds", "#9aa3ad"],
  ["mask", "Mask points", "#ff3bd4"],
  ["grasp", "Grasps", "#ff4040"],
  ["target", "Targets", "#5be37d"],
  ["plan", "Planned path", "#ffa53a"],
  ["path", "Executed path", "#35d0ff"],
];

if (root) {
  let started = false;
  const start = function () {
    if (started) return;
    started = true;
    boot().catch(function (err) {
      root.dataset.state = "error";
      status("The 3D view could not be shown: " + (err && err.message ? err.message : err));
    });
  };
  root.addEventListener("toggle", function () { if (root.open) start(); });
  if (root.open) start();
}

function status(text) {
  const el = document.getElementById("scene3d-status");
  if (el) { el.textContent = text; el.hidden = !text; }
}

async function loadData(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error("HTTP " + response.status);
  const buf = await response.arrayBuffer();
  const head = new Uint8Array(buf, 0, Math.min(2, buf.byteLength));
  let text;
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const stream = new Blob([buf]).stream().pipeThrough(new DecompressionStream("gzip"));
    text = await new Response(stream).text();
  } else {
    text = new TextDecoder().decode(buf);  // a server that inflated it already
  }
  return JSON.parse(text);
}

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function boot() {
  const base = new URL("../vendor/three/", import.meta.url);
  const [THREE, controlsModule, data] = await Promise.all([
    import(new URL("three.module.min.js", base).href),
    import(new URL("OrbitControls.js", base).href),
    loadData(root.dataset.src),
  ]);
  build(THREE, controlsModule.OrbitControls, data);
}

function pageCalls() {
  const out = new Map();
  try {
    for (const c of JSON.parse(document.getElementById("page-config").textContent).calls || []) out.set(c.seq, c);
  } catch (e) { /* names are optional */ }
  return out;
}

function build(THREE, OrbitControls, data) {
  const view = document.getElementById("scene3d-view");
  const calls = pageCalls();
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x1d2127);
  const camera = new THREE.PerspectiveCamera(45, 4 / 3, 0.01, 50);
  camera.up.set(0, 0, 1);
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  view.prepend(renderer.domElement);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = false;

  const items = [];  // {seq, layer, material(s), base opacity, role}
  const focus = new THREE.Box3();  // what the robot did: grasps, targets, paths (the camera frames it)
  const maskBox = new THREE.Box3();
  const scenePoints = [];
  let nScene = 0;

  function add(obj, seq, layer, opacity, extra) {
    const mats = [];
    obj.traverse(function (o) { if (o.material) mats.push(o.material); });
    for (const m of mats) { m.transparent = true; m.opacity = opacity; m.depthWrite = opacity >= 0.99; }
    const item = Object.assign({ obj: obj, seq: seq, layer: layer, mats: mats, opacity: opacity }, extra || {});
    items.push(item);
    scene.add(obj);
    return item;
  }

  /* ---- point clouds ---- */
  // Segmentation masks of one prompt share a colour (the first prompt magenta, then yellow, violet,
  // green); points a call back-projected itself (mask_to_world_points) are amber and smaller, on top.
  const maskColors = [0xff3bd4, 0xffe14d, 0xb084ff, 0x7dffb2];
  const labelColor = new Map();
  function maskColor(label) {
    const key = String(label || "").replace(/ [0-9.]+$/, "");
    if (!labelColor.has(key)) labelColor.set(key, maskColors[labelColor.size % maskColors.length]);
    return labelColor.get(key);
  }
  for (const c of data.clouds || []) {
    const xyz = new Float32Array(b64bytes(c.xyz).buffer);
    const geom = new THREE.BufferGeometry();
    geom.setAttribute("position", new THREE.BufferAttribute(xyz, 3));
    let material;
    if (c.kind === "scene" && c.rgb) {
      const rgb = b64bytes(c.rgb);
      geom.setAttribute("color", new THREE.BufferAttribute(new Float32Array(rgb).map(function (v) { return v / 255; }), 3));
      material = new THREE.PointsMaterial({ size: 0.008, vertexColors: true });
      nScene += c.n;
      for (let i = 0; i < xyz.length; i += 9) scenePoints.push(xyz[i], xyz[i + 1], xyz[i + 2]);
    } else {
      material = c.camera
        ? new THREE.PointsMaterial({ size: 0.009, color: maskColor(c.label) })
        : new THREE.PointsMaterial({ size: 0.005, color: 0xffa000 });
      geom.computeBoundingBox();
      maskBox.union(geom.boundingBox);
    }
    add(new THREE.Points(geom, material), c.seq, c.kind === "scene" ? "scene" : "mask", c.kind === "scene" ? 1 : 0.85, { label: c.label, camera: c.camera });
  }

  /* ---- gripper glyphs: grasp point between the fingertips, y closing, z approach ---- */
  function poseMatrix(p) {
    const m = new THREE.Matrix4();
    m.set(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], 0, 0, 0, 1);
    return m;
  }
  const glyphLocal = [
    [0, -0.04, 0], [0, -0.04, -0.045], [0, 0.04, 0], [0, 0.04, -0.045],
    [0, -0.04, -0.045], [0, 0.04, -0.045], [0, 0, -0.045], [0, 0, -0.09],
  ];
  function glyph(pose, color) {
    const geom = new THREE.BufferGeometry().setFromPoints(glyphLocal.map(function (v) { return new THREE.Vector3(v[0], v[1], v[2]); }));
    const lines = new THREE.LineSegments(geom, new THREE.LineBasicMaterial({ color: color }));
    lines.matrixAutoUpdate = false;
    lines.matrix.copy(poseMatrix(pose));
    return lines;
  }
  const boxes = [[0.02, 0.012, 0.045, 0, -0.04, -0.0225], [0.02, 0.012, 0.045, 0, 0.04, -0.0225],
    [0.03, 0.1, 0.014, 0, 0, -0.052], [0.035, 0.035, 0.04, 0, 0, -0.079]];
  function ghost(pose, color) {
    const group = new THREE.Group();
    for (const b of boxes) {
      const geom = new THREE.BoxGeometry(b[0], b[1], b[2]);
      geom.translate(b[3], b[4], b[5]);
      group.add(new THREE.Mesh(geom, new THREE.MeshBasicMaterial({ color: color })));
      group.add(new THREE.LineSegments(new THREE.EdgesGeometry(geom), new THREE.LineBasicMaterial({ color: color })));
    }
    group.matrixAutoUpdate = false;
    group.matrix.copy(poseMatrix(pose));
    return group;
  }
  function posOf(p) { return new THREE.Vector3(p[3], p[7], p[11]); }

  for (const g of data.grasps || []) {
    g.poses.forEach(function (pose, i) {
      const best = i === g.best;
      add(glyph(pose, best ? 0xff4040 : 0x4ea1ff), g.seq, "grasp", best ? 1 : 0.35, { best: best });
      focus.expandByPoint(posOf(pose));
    });
  }
  for (const t of data.targets || []) {
    add(ghost(t.pose, 0x5be37d), t.seq, "target", 0.4);
    focus.expandByPoint(posOf(t.pose));
  }
  for (const p of data.plans || []) {
    const pts = p.path.map(function (q) { return new THREE.Vector3(q[0], q[1], q[2]); });
    const line = new THREE.Line(new THREE.BufferGeometry().setFromPoints(pts),
      new THREE.LineDashedMaterial({ color: 0xffa53a, dashSize: 0.012, gapSize: 0.008 }));
    line.computeLineDistances();
    add(line, p.seq, "plan", 1, { method: p.method });
    for (const v of pts) focus.expandByPoint(v);
  }

  /* ---- executed path, one piece per call (joined to the sample before it) ---- */
  const samples = data.samples || { t: [], seq: [], pose: [], joints: [] };
  const arms = (samples.pose || []).length;
  for (let arm = 0; arm < arms; arm++) {
    const poses = samples.pose[arm];
    let i = 0;
    while (i < poses.length) {
      const seq = samples.seq[i];
      let j = i;
      while (j + 1 < poses.length && samples.seq[j + 1] === seq) j++;
      const from = Math.max(0, i - 1);
      const pts = [];
      for (let k = from; k <= j; k++) pts.push(new THREE.Vector3(poses[k][0], poses[k][1], poses[k][2]));
      if (pts.length >= 2) {
        add(new THREE.Line(new THREE.BufferGeometry().setFromPoints(pts),
          new THREE.LineBasicMaterial({ color: arm ? 0xc58bff : 0x35d0ff })), seq, "path", 1);
      }
      for (const v of pts) focus.expandByPoint(v);
      i = j + 1;
    }
  }
  // Where the gripper was at the end of the picked call (a white ghost), moved on selection.
  const now = ghost([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 0xffffff);
  now.visible = false;
  now.traverse(function (o) { if (o.material) { o.material.transparent = true; o.material.opacity = o.isMesh ? 0.25 : 0.9; } });
  scene.add(now);

  /* ---- table grid and axes ---- */
  const tableZ = tableHeight(scenePoints, focus);
  const grid = new THREE.GridHelper(2, 20, 0x59616c, 0x3a4049);
  grid.rotation.x = Math.PI / 2;
  grid.position.set(0.5, 0, tableZ);
  scene.add(grid);
  scene.add(new THREE.AxesHelper(0.15));

  /* ---- framing: what the robot did, else the masks, else the clouds ---- */
  if (focus.isEmpty()) focus.copy(maskBox);
  if (focus.isEmpty() && scenePoints.length) {
    for (let i = 0; i < scenePoints.length; i += 3) focus.expandByPoint(new THREE.Vector3(scenePoints[i], scenePoints[i + 1], scenePoints[i + 2]));
  }
  if (focus.isEmpty()) focus.set(new THREE.Vector3(-0.2, -0.4, -0.1), new THREE.Vector3(0.8, 0.4, 0.5));
  focus.expandByScalar(0.1);
  const centre = focus.getCenter(new THREE.Vector3());
  const radius = Math.max(0.25, focus.getSize(new THREE.Vector3()).length() / 2);
  const dir = new THREE.Vector3(1.0, -0.75, 0.75).normalize();
  const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2)) * 0.95;
  camera.position.copy(centre).addScaledVector(dir, distance);
  controls.target.copy(centre);
  controls.update();

  /* ---- layers, selection, drawing ---- */
  const shown = new Set(LAYERS.map(function (l) { return l[0]; }));
  const layerBox = document.getElementById("scene3d-layers");
  for (const [key, label, color] of LAYERS) {
    const n = items.filter(function (it) { return it.layer === key; }).length;
    const lab = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.dataset.layer = key; box.disabled = n === 0;
    box.addEventListener("change", function () { if (box.checked) shown.add(key); else shown.delete(key); apply(); });
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = key === "plan" ? "repeating-linear-gradient(90deg," + color + " 0 4px,transparent 4px 7px)" : color;
    lab.append(box, sw, document.createTextNode(label + (n ? "" : " (none)")));
    layerBox.append(lab);
  }

  let selected = null;
  function contextCloud(seq) {  // the latest observation at or before the picked call
    let best = null;
    for (const it of items) if (it.layer === "scene" && it.seq <= seq && (best === null || it.seq > best)) best = it.seq;
    return best;
  }
  function apply() {
    const ctxSeq = selected === null ? null : contextCloud(selected);
    for (const it of items) {
      it.obj.visible = shown.has(it.layer);
      let o = it.opacity;
      if (selected !== null && it.seq !== selected) o = it.layer === "scene" && it.seq === ctxSeq ? 0.8 : o * 0.12;
      for (const m of it.mats) { m.opacity = o; m.depthWrite = o >= 0.99; }
    }
    now.visible = false;
    if (selected !== null && arms) {
      let k = -1;
      for (let i = 0; i < samples.seq.length; i++) if (samples.seq[i] <= selected) k = i;
      if (k >= 0) {
        const p = samples.pose[0][k];
        const q = new THREE.Quaternion(p[4], p[5], p[6], p[3]);
        now.matrix.compose(new THREE.Vector3(p[0], p[1], p[2]), q, new THREE.Vector3(1, 1, 1));
        now.visible = true;
      }
    }
    render();
    drawJoints();
  }
  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      renderer.render(scene, camera);
      if (root.dataset.state !== "rendered") {
        root.dataset.state = "rendered";
        root.dataset.points = String(nScene);
        status("");
      }
    });
  }
  function select(seq) {
    selected = seq;
    root.dataset.selected = seq === null ? "" : String(seq);
    const label = document.getElementById("scene3d-now");
    if (seq === null) {
      label.textContent = "Whole episode: " + (data.clouds || []).length + " clouds, " + (data.grasps || []).length + " grasp calls, " + (data.targets || []).length + " targets.";
    } else {
      const mine = items.filter(function (it) { return it.seq === seq; });
      const kinds = {};
      for (const it of mine) kinds[it.layer] = (kinds[it.layer] || 0) + 1;
      const c = calls.get(seq);
      const parts = Object.keys(kinds).map(function (k) { return LAYERS.find(function (l) { return l[0] === k; })[1].toLowerCase() + (kinds[k] > 1 ? " ×" + kinds[k] : ""); });
      label.textContent = "#" + seq + (c ? " " + c.primitive : "") + ": " + (parts.length ? parts.join(", ") : "nothing in 3D (shown: the gripper at its end)");
    }
    apply();
  }
  window.scene3dView = { select: select, get selected() { return selected; }, points: nScene };

  /* ---- joint chart ---- */
  const chart = document.getElementById("scene3d-joints");
  const t = samples.t || [];
  const joints = arms ? samples.joints[0] : [];
  function span(seq) {
    let a = null, b = null, last = null;
    for (let i = 0; i < t.length; i++) {
      if (samples.seq[i] === seq) { if (a === null) a = t[i]; b = t[i]; }
      if (samples.seq[i] <= seq) last = t[i];
    }
    return a !== null ? [a, b] : last !== null ? [last, last] : null;
  }
  function drawJoints() {
    const w = chart.clientWidth || 300, h = chart.clientHeight || 150, dpr = window.devicePixelRatio || 1;
    chart.width = Math.round(w * dpr); chart.height = Math.round(h * dpr);
    const g = chart.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    if (t.length < 2 || !joints.length) { g.fillStyle = "#888"; g.fillText("no joint samples", 8, 16); return; }
    let lo = Infinity, hi = -Infinity;
    for (const row of joints) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (hi - lo < 1e-3) { lo -= 0.5; hi += 0.5; }
    const L = 34, R = 8, T = 8, B = 18;
    const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
    const X = function (v) { return L + (v - t0) / (t1 - t0) * (w - L - R); };
    const Y = function (v) { return T + (hi - v) / (hi - lo) * (h - T - B); };
    chart._x = { X: X, L: L, R: R, t0: t0, t1: t1, w: w };
    if (selected !== null) {
      const s = span(selected);
      if (s) {
        g.fillStyle = "rgba(29, 78, 216, 0.16)";
        g.fillRect(X(s[0]) - 1, T, Math.max(2, X(s[1]) - X(s[0]) + 2), h - T - B);
        g.fillStyle = "rgba(29, 78, 216, 0.9)";
        g.fillRect(X(s[1]) - 1, T, 2, h - T - B);
      }
    }
    g.strokeStyle = "#ccc"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(L, T); g.lineTo(L, h - B); g.lineTo(w - R, h - B); g.stroke();
    g.fillStyle = "#666"; g.font = "10px sans-serif";
    g.fillText(hi.toFixed(1), 2, T + 8); g.fillText(lo.toFixed(1), 2, h - B);
    g.fillText(t0.toFixed(1) + " s", L, h - 5);
    const endLabel = t1.toFixed(1) + " s";
    g.fillText(endLabel, w - R - g.measureText(endLabel).width, h - 5);
    const nj = joints[0].length;
    for (let j = 0; j < nj; j++) {
      g.strokeStyle = JOINT_COLORS[j % JOINT_COLORS.length]; g.lineWidth = 1.3;
      g.beginPath();
      for (let i = 0; i < t.length; i++) { const x = X(t[i]), y = Y(joints[i][j]); if (i) g.lineTo(x, y); else g.moveTo(x, y); }
      g.stroke();
      g.fillStyle = JOINT_COLORS[j % JOINT_COLORS.length];
      g.fillText("j" + (j + 1), L + 4 + j * 22, T + 9);
    }
  }
  chart.addEventListener("click", function (e) {
    const m = chart._x;
    if (!m || !t.length) return;
    const rect = chart.getBoundingClientRect();
    const tt = m.t0 + (e.clientX - rect.left - m.L) / (m.w - m.L - m.R) * (m.t1 - m.t0);
    let k = 0;
    for (let i = 0; i < t.length; i++) if (Math.abs(t[i] - tt) < Math.abs(t[k] - tt)) k = i;
    const seq = samples.seq[k];
    if (seq > 0) location.hash = "#call-" + seq;  // trace.js selects it in the list; hashchange picks it here
  });

  /* ---- wiring ---- */
  controls.addEventListener("change", render);
  function resize() {
    const w = view.clientWidth || 300, h = view.clientHeight || 300;
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
    render();
    drawJoints();
  }
  new ResizeObserver(resize).observe(view);
  document.getElementById("scene3d-all").addEventListener("click", function () { select(null); });
  const list = document.getElementById("calls");
  if (list) {
    list.addEventListener("click", function (e) {
      const head = e.target.closest(".call-head");
      if (!head || e.target.closest("a, img")) return;
      select(Number(head.parentElement.dataset.seq));
    });
  }
  window.addEventListener("hashchange", function () {
    const m = /^#call-(\d+)$/.exec(location.hash);
    if (m) select(Number(m[1]));
  });
  const initial = /^#call-(\d+)$/.exec(location.hash);
  const picked = document.querySelector("#calls .call.selected");
  resize();
  select(initial ? Number(initial[1]) : picked ? Number(picked.dataset.seq) : null);
}

/* The table's height: the densest 1 cm slab of the clouds' points near what the calls touched (a table
   is the largest flat surface in view); just below the lowest touched point when there are no clouds. */
function tableHeight(points, focus) {
  const counts = new Map();
  const cx = focus.isEmpty() ? 0.5 : (focus.min.x + focus.max.x) / 2, cy = focus.isEmpty() ? 0 : (focus.min.y + focus.max.y) / 2;
  for (let i = 0; i < points.length; i += 3) {
    if (Math.abs(points[i] - cx) > 0.6 || Math.abs(points[i + 1] - cy) > 0.6) continue;
    const k = Math.round(points[i + 2] * 100);
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  let best = null, n = 0;
  for (const [k, c] of counts) if (c > n) { best = k; n = c; }
  if (best !== null) return best / 100;
  return focus.isEmpty() ? 0 : focus.min.z - 0.02;
}
