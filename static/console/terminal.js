// The session terminal: xterm.js on a websocket to the session (binary frames both ways, JSON
// control frames, as sessions/consumers.py defines them), with reconnection within the server's
// grace period, acknowledgements for flow control, the session's copy/paste restrictions, the
// owner's share dialog and files panel. Server text only reaches the page through textContent.
"use strict";

(function () {
  const box = document.getElementById("terminal");
  const sessionId = box.dataset.session;
  const disableCopy = box.dataset.disableCopy === "true";
  const disablePaste = box.dataset.disablePaste === "true";
  const encoder = new TextEncoder();
  // Reconnecting backs off (doubling, with jitter, at most RETRY_MAX ms apart) and gives up after
  // RETRY_FOR ms; the count starts again only once a connection stayed up STABLE_AFTER ms, so a
  // server that accepts and then drops at once is not hammered every half second.
  const RETRY_FIRST = 500;
  const RETRY_MAX = 30000;
  const RETRY_FOR = 5 * 60 * 1000;
  const STABLE_AFTER = 10000;
  const TYPING = ["owner", "collaborator"];
  const STATE_TEXT = {
    pending: "starting",
    awaiting_continue: "waiting to continue",
    connecting: "connecting",
    active: "connected",
    reconnecting: "reconnecting",
  };
  const ACCESS_TEXT = {
    viewer: "watch only",
    supervisor: "supervising · watch only",
    collaborator: "shared · you can type",
  };
  const VIEWER_TEXT = { viewer: "watching", collaborator: "can type", supervisor: "supervisor" };

  const $ = (id) => document.getElementById(id);

  const term = new Terminal({
    cursorBlink: true,
    scrollback: 5000,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace',
    fontSize: 14,
    theme: { background: "#10161f" },
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  window.pamTerminal = term; // for tests and the browser console

  let socket = null;
  let attempt = 0;
  let retryingSince = null;
  let interrupted = false;
  let stableTimer = null;
  let opened = false; // a socket opened before
  let replay = false; // the next output is the session's scrollback again: start afresh
  let ended = false;
  let access = null;
  let state = "connecting";

  const canType = () => state === "active" && TYPING.includes(access);

  // --- what the page shows ---------------------------------------------------------------------

  function showState(name, text) {
    const badge = $("client-state");
    badge.dataset.state = name;
    badge.textContent = text || STATE_TEXT[name] || name;
    term.options.disableStdin = !canType();
    term.options.cursorBlink = canType();
  }

  function showAccess() {
    box.dataset.access = access || "";
    const badge = $("client-access");
    badge.textContent = ACCESS_TEXT[access] || "";
    badge.dataset.access = access || "";
    badge.hidden = !ACCESS_TEXT[access];
  }

  // A line under the bar that leaves the terminal readable (reconnecting, ended, paste refused).
  function notice(text, kind) {
    const bar = $("client-notice");
    bar.textContent = text || "";
    bar.dataset.kind = kind || "info";
    bar.hidden = !text;
    requestAnimationFrame(refit);
  }

  // A message over the terminal, for when there is nothing to see (not signed in, refused).
  function blocking(text) {
    $("client-message-text").textContent = text;
    $("client-message").hidden = !text;
  }

  function showBanner(event) {
    $("client-banner-text").textContent = event.text || "";
    $("client-banner-text").hidden = !event.text;
    $("client-public-key").textContent = event.public_key || "";
    $("client-public-key-box").hidden = !event.public_key;
    $("client-banner").hidden = false;
    $("client-continue").focus();
  }

  function hideBanner() { $("client-banner").hidden = true; }

  function showViewers(viewers) {
    const others = viewers.filter((v) => v.access !== "owner");
    $("client-viewers").textContent = others.length
      ? "Watching: " + others.map((v) => `${v.name || v.email} (${VIEWER_TEXT[v.access] || v.access})`).join(", ")
      : "";
  }

  function showEnded(event) {
    ended = true;
    state = "ended";
    showState(event.status || "closed");
    hideBanner();
    notice(event.message || "The session has ended.", event.status === "failed" ? "error" : "info");
    for (const id of ["client-share", "client-terminate", "client-files"]) {
      const control = $(id);
      if (control) control.hidden = true;
    }
    for (const id of ["share-dialog", "files-dialog"]) {
      const dialog = $(id);
      if (dialog && dialog.open) dialog.close();
    }
  }

  // --- the websocket -----------------------------------------------------------------------------

  function send(payload) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(payload);
  }

  function control(object) { send(JSON.stringify(object)); }

  function handle(event) {
    if (event.type === "access") {
      access = event.access;
      showAccess();
    } else if (event.type === "status") {
      state = event.state;
      showState(state);
      if (state === "active" || state === "connecting") hideBanner();
      if (state === "awaiting_continue" && access !== "owner") notice("Waiting for the owner to continue.");
      else notice("");
    } else if (event.type === "banner") {
      showBanner(event);
    } else if (event.type === "viewers") {
      showViewers(event.viewers || []);
    } else if (event.type === "ended") {
      showEnded(event);
    } else if (event.type === "interrupted") {
      // The server lost a service it needs for this session (sessions/consumers.py): say why,
      // then reconnect as after any other drop.
      interrupted = true;
      notice(event.message, "warning");
    }
  }

  function url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // A share link was redeemed into the login session (join.js): no key travels in this URL.
    const query = new URLSearchParams({ cols: term.cols, rows: term.rows });
    return `${scheme}//${location.host}/ws/sessions/${sessionId}/terminal?${query}`;
  }

  function connect() {
    socket = new WebSocket(url());
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      clearTimeout(stableTimer);
      stableTimer = setTimeout(() => { attempt = 0; retryingSince = null; }, STABLE_AFTER);
      replay = opened; // a reconnection: the session sends its scrollback again
      opened = true;
      notice("");
      control({ type: "resize", cols: term.cols, rows: term.rows });
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        // Flow control: once what came before the mark is drawn, name the mark back.
        if (message.type === "mark") term.write("", () => control({ type: "ack", mark: message.id }));
        else handle(message);
      } else {
        const data = new Uint8Array(event.data);
        if (replay) { term.reset(); replay = false; }
        term.write(data);
      }
    };
    socket.onclose = (event) => {
      clearTimeout(stableTimer);
      if (ended) return;
      if (event.code === 4401 || event.code === 4403) {
        ended = true;
        showState("closed");
        blocking(event.code === 4401 ? "Sign in to open this session." : "You may not open this session.");
        return;
      }
      retryingSince = retryingSince || Date.now();
      if (Date.now() - retryingSince > RETRY_FOR) {
        showState("disconnected");
        notice("The connection to PAM was lost. Reload the page to try again.", "error");
        return;
      }
      showState("reconnecting");
      if (!interrupted) notice("Connection lost, reconnecting…", "warning");
      interrupted = false;
      const delay = Math.min(RETRY_MAX, RETRY_FIRST * 2 ** attempt++);
      setTimeout(connect, delay / 2 + Math.random() * delay / 2);
    };
  }

  // --- keyboard, paste, copy and size ------------------------------------------------------------

  term.onData((data) => { if (canType()) send(encoder.encode(data)); });
  term.onBinary((data) => {
    if (canType()) send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
  });
  term.onResize(({ cols, rows }) => control({ type: "resize", cols, rows }));

  let refitting = false;
  function refit() {
    refitting = false;
    fit.fit();
  }
  new ResizeObserver(() => {
    if (!refitting) { refitting = true; requestAnimationFrame(refit); }
  }).observe(box);

  if (disablePaste) {
    // A paste reaches xterm only as a paste event on its textarea inside the box: stop it first.
    box.addEventListener("paste", (event) => {
      event.preventDefault();
      event.stopImmediatePropagation();
      if (!ended) notice("Pasting is turned off for this session.", "warning");
    }, true);
    term.attachCustomKeyEventHandler((event) => !(event.type === "keydown" && (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "v"));
  }
  if (disableCopy) {
    document.addEventListener("copy", (event) => {
      if (box.contains(event.target)) event.preventDefault();
    }, true);
    box.classList.add("no-select");
  }
  box.addEventListener("mousedown", () => term.focus());

  // Copy page text (a link, the public key), never terminal content.
  async function copyText(text, input) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      if (!input) return false;
      input.focus();
      input.select();
      try { return document.execCommand("copy"); } catch { return false; }
    }
  }

  // --- the owner's and supervisors' buttons ------------------------------------------------------

  $("client-continue").addEventListener("click", () => {
    hideBanner();
    control({ type: "continue" });
    term.focus();
  });

  const copyKey = $("client-copy-key");
  copyKey.addEventListener("click", async () => {
    const ok = await copyText($("client-public-key").textContent);
    $("client-copy-key-status").textContent = ok ? "Copied." : "Select the key and copy it.";
  });

  const terminate = $("client-terminate");
  if (terminate) {
    terminate.addEventListener("click", async () => {
      if (!confirm("End this session for everyone?")) return;
      terminate.disabled = true;
      try { await window.pam.api("DELETE", `/api/sessions/${sessionId}`); }
      catch (error) { notice(error.message, "error"); terminate.disabled = false; }
    });
  }

  const share = $("client-share");
  if (share) {
    const dialog = $("share-dialog");
    const link = $("share-link");
    const create = $("share-create");

    function shareError(text) {
      $("share-error").textContent = text || "";
      $("share-error").hidden = !text;
    }

    share.addEventListener("click", () => {
      shareError("");
      $("share-copied").textContent = "";
      dialog.showModal();
    });
    create.addEventListener("click", async () => {
      const mode = dialog.querySelector("input[name=share_mode]:checked").value;
      create.disabled = true;
      shareError("");
      try {
        const made = await window.pam.api("POST", `/api/sessions/${sessionId}/share`, { share_mode: mode });
        link.value = location.origin + made.share_url;
        $("share-link-mode").textContent = made.share_mode === "read-write"
          ? "Whoever opens this link can watch and type."
          : "Whoever opens this link can watch, not type.";
        $("share-copied").textContent = "";
        $("share-link-box").hidden = false;
        create.textContent = "Create a new link";
        link.focus();
        link.select();
      } catch (error) {
        shareError(error.message);
      } finally {
        create.disabled = false;
      }
    });
    $("share-copy").addEventListener("click", async () => {
      const ok = await copyText(link.value, link);
      $("share-copied").textContent = ok ? "Copied." : "Select the link and copy it.";
    });
    $("share-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (!ended) term.focus(); });
  }

  // --- the owner's files (enable_drive): SFTP on the target through the API ----------------------

  const files = $("client-files");
  if (files) {
    const dialog = $("files-dialog");
    const entries = $("files-entries");
    const base = `/api/sessions/${sessionId}/files`;
    let current = "";

    const parentOf = (path) => path.replace(/\/[^/]*\/?$/, "") || "/";
    const childOf = (path, name) => (path.endsWith("/") ? path : path + "/") + name;

    function filesError(text) {
      $("files-error").textContent = text || "";
      $("files-error").hidden = !text;
    }

    function size(bytes) {
      if (bytes === null || bytes === undefined) return "";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let value = bytes;
      let unit = 0;
      while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
      return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
    }

    function row(entry) {
      const tr = document.createElement("tr");
      const path = childOf(current, entry.name);
      let name;
      if (entry.type === "dir") {
        name = window.pam.button(entry.name + "/", "link-button files-dir", () => list(path));
      } else {
        name = document.createElement("span");
        name.textContent = entry.name;
      }
      window.pam.cell(tr, name);
      window.pam.cell(tr, entry.type === "dir" ? "" : size(entry.size));
      window.pam.cell(tr, entry.link ? `${entry.type} (link)` : entry.type);
      window.pam.cell(tr, window.pam.formatDate(entry.mtime));
      const actions = window.pam.cell(tr, "");
      if (entry.type === "file") {
        const link = document.createElement("a");
        link.href = `${base}/download?${new URLSearchParams({ path })}`;
        link.download = entry.name;
        link.textContent = "Download";
        actions.appendChild(link);
      }
      return tr;
    }

    async function list(path) {
      filesError("");
      try {
        const listing = await window.pam.api("GET", `${base}?${new URLSearchParams({ path })}`);
        current = listing.path;
        $("files-path").textContent = current;
        $("files-up").disabled = current === "/";
        entries.replaceChildren(...listing.entries.map(row));
        $("files-truncated").hidden = !listing.truncated;
      } catch (error) {
        filesError(error.message);
      }
    }

    files.addEventListener("click", () => {
      $("files-status").textContent = "";
      dialog.showModal();
      list(current);
    });
    $("files-up").addEventListener("click", () => list(parentOf(current)));
    $("files-refresh").addEventListener("click", () => list(current));
    $("files-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (!ended) term.focus(); });

    $("files-upload-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("files-upload");
      if (!input.files.length) return;
      const body = new FormData();
      body.append("path", current);
      body.append("file", input.files[0]);
      const button = $("files-upload-button");
      button.disabled = true;
      filesError("");
      $("files-status").textContent = `Uploading ${input.files[0].name}…`;
      try {
        // Not window.pam.api: the body is multipart, not JSON.
        const response = await fetch(`${base}/upload`, {
          method: "POST",
          body,
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRFToken": window.pam.csrfToken() },
        });
        const data = await response.json();
        if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
        $("files-status").textContent = `Uploaded ${data.path} (${size(data.size)}).`;
        input.value = "";
        list(current);
      } catch (error) {
        $("files-status").textContent = "";
        filesError(error.message);
      } finally {
        button.disabled = false;
      }
    });
  }

  connect();
  term.focus();
})();
