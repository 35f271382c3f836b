// vidsift live page: camera -> JPEG frames over a WebSocket -> the server's StreamSession.
// Protocol: see vidsift/serve/_live.py. No build step, no dependencies.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const video = $("camera"), canvas = $("grab"), state = $("state");
  let ws = null, ready = null, stream = null, sendTimer = null, nextId = 1, busy = false;
  let framesSent = 0, framesAcked = 0; // flow control: at most 2 frames in flight
  const pending = new Map(); // ask id -> {li, sentAt}
  const thumbs = new Map();  // keyframe id -> figure

  function setState(text, kind) {
    state.textContent = text;
    state.className = "badge badge-" + kind;
    state.dataset.state = kind;
  }

  function fmtTime(t) {
    const m = Math.floor(t / 60), s = (t - 60 * m).toFixed(1);
    return (m ? m + ":" + s.padStart(4, "0") : s + " s");
  }

  async function startCamera() {
    $("start").disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      setState("camera: " + err.name, "error");
      $("start").disabled = false;
      return;
    }
    video.srcObject = stream;
    stream.getVideoTracks().forEach((track) => {
      track.addEventListener("ended", () => setState("camera ended", "error"));
    });
    connect();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/v1/live");
    ws.binaryType = "arraybuffer";
    setState("connecting", "wait");
    framesSent = 0;
    framesAcked = 0;
    ws.onopen = () => {
      const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
      const token = $("token").value || fromHash || sessionStorage.getItem("vidsift-token") || "";
      const params = new URLSearchParams(location.search);
      const hello = { type: "hello", token: token };
      if (params.get("budget")) hello.budget = Number(params.get("budget"));
      if (params.get("fps")) hello.fps = Number(params.get("fps"));
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      clearInterval(sendTimer);
      sendTimer = null;
      $("ask").disabled = true;
      if (state.dataset.state !== "error") setState("disconnected", "error");
      if (ev.code === 4401) { document.querySelector(".token").hidden = false; $("start").disabled = false; }
    };
  }

  function handle(msg) {
    switch (msg.type) {
      case "ready":
        ready = msg;
        if ($("token").value) sessionStorage.setItem("vidsift-token", $("token").value);
        $("model").textContent = msg.model + " · budget " + msg.budget + " tokens · " + msg.fps + " fps";
        $("ask").disabled = false;
        setState("live", "live");
        sendTimer = setInterval(sendFrame, 1000 / msg.send_fps);
        break;
      case "ack":
        framesAcked = msg.frames;
        break;
      case "answer": {
        const p = pending.get(msg.id);
        if (!p) break;
        pending.delete(msg.id);
        const pageLatency = (performance.now() - p.sentAt) / 1000;
        p.li.classList.remove("pending");
        p.li.classList.add("answered");
        p.li.dataset.latency = pageLatency.toFixed(4);
        p.li.dataset.serverLatency = msg.latency_s;
        const chosen = msg.choice ? (msg.choice.index === null ? "(none of the options: " + (msg.answer || "empty") + ")"
          : msg.choice.letter + ". " + msg.choice.option) : null;
        p.li.querySelector(".a").textContent = msg.mode === "no_frames" ? "(no frames yet)" : (chosen || msg.answer || "(empty answer)");
        if (msg.choice) p.li.dataset.choice = msg.choice.option || "";
        p.li.querySelector(".meta").textContent = "at stream t=" + fmtTime(msg.t) + " · " + msg.memory_tokens +
          " memory tokens · answered in " + pageLatency.toFixed(2) + " s (model " + msg.latency_s.toFixed(2) + " s)";
        break;
      }
      case "thumb": {
        if (thumbs.has(msg.id)) break;
        const fig = document.createElement("figure");
        fig.className = "keyframe";
        fig.dataset.id = msg.id;
        fig.dataset.t = msg.t;
        const img = document.createElement("img");
        img.src = msg.src;
        img.alt = "keyframe at " + fmtTime(msg.t);
        const cap = document.createElement("figcaption");
        cap.textContent = fmtTime(msg.t);
        fig.append(img, cap);
        thumbs.set(msg.id, fig);
        $("keyframes").append(fig);
        break;
      }
      case "status": {
        const keep = new Set(msg.keyframes.map((k) => k.id));
        for (const [id, fig] of thumbs) {
          if (!keep.has(id)) { fig.remove(); thumbs.delete(id); }
        }
        for (const k of msg.keyframes) {
          const fig = thumbs.get(k.id);
          if (fig) fig.querySelector("figcaption").textContent = fmtTime(k.t) + " · " + k.tokens + " tok";
        }
        const fill = msg.budget ? Math.min(100, (100 * msg.memory_tokens) / msg.budget) : 0;
        $("memory-fill").style.width = fill.toFixed(1) + "%";
        $("memory-fill").classList.toggle("full", fill >= 99.5);
        $("memory-fill").dataset.tokens = msg.memory_tokens;
        $("memory-text").textContent = msg.memory_tokens + " / " + msg.budget + " tokens (" + msg.entries + " keyframes)";
        $("stats").textContent = "stream t=" + fmtTime(msg.t) + " · frames seen " + msg.frames_seen + ", kept " +
          msg.frames_kept + " · " + msg.stalls + " stalls · " + msg.mode;
        if (state.dataset.state !== "error") setState(msg.stalled ? "stalled" : "live", msg.stalled ? "stalled" : "live");
        break;
      }
      case "event":
        if (msg.event === "stalled") setState("stalled", "stalled");
        else if (msg.event === "resumed") setState("live", "live");
        else if (msg.event === "error") setState("error: " + msg.error, "error");
        break;
      case "error":
        if (msg.id !== undefined && pending.has(msg.id)) {
          const p = pending.get(msg.id);
          pending.delete(msg.id);
          p.li.classList.remove("pending");
          p.li.classList.add("failed");
          p.li.querySelector(".a").textContent = "error: " + msg.message;
        } else {
          setState("error: " + msg.message, "error");
        }
        break;
    }
  }

  function sendFrame() {
    if (!ws || ws.readyState !== WebSocket.OPEN || busy || !video.videoWidth) return;
    if (framesSent - framesAcked >= 2 || ws.bufferedAmount > 0) return; // the server is behind: skip this frame
    const side = ready.max_side, w = video.videoWidth, h = video.videoHeight;
    const scale = Math.min(1, side / Math.max(w, h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    busy = true;
    canvas.toBlob((blob) => {
      busy = false;
      if (!blob || ws.readyState !== WebSocket.OPEN) return;
      framesSent++;
      blob.arrayBuffer().then((buf) => ws.send(buf));
    }, "image/jpeg", 0.8);
  }

  function ask(ev) {
    ev.preventDefault();
    const q = $("question").value.trim();
    if (!q || !ws || ws.readyState !== WebSocket.OPEN) return;
    const id = nextId++;
    const li = document.createElement("li");
    li.className = "pending";
    li.dataset.id = id;
    const qd = document.createElement("div"), ad = document.createElement("div"), md = document.createElement("div");
    qd.className = "q"; ad.className = "a"; md.className = "meta";
    qd.textContent = q; ad.textContent = "thinking..."; md.textContent = "";
    li.append(qd, ad, md);
    $("answers").prepend(li);
    pending.set(id, { li: li, sentAt: performance.now() });
    const opts = $("options").value.trim();
    if (opts) qd.textContent = q + "  [" + opts.split(",").map((o) => o.trim()).join(" / ") + "]";
    ws.send(JSON.stringify(opts ? { type: "ask", id: id, question: q, options: opts } : { type: "ask", id: id, question: q }));
    $("question").value = "";
  }

  $("start").addEventListener("click", startCamera);
  $("ask-form").addEventListener("submit", ask);
  setState("camera off", "wait");
  if (new URLSearchParams(location.search).get("autostart") === "1") startCamera();
})();
