// Sessions page: list sessions (open ones by default) from /api/sessions, refreshed every few
// seconds; open your own, watch others' (those who may watch any session), and end them. The
// list holds no secret (no credential, share link or key), and API data only reaches the page
// through textContent and attributes.
"use strict";

(function () {
  const { api, formatDate, cell, button, showError } = window.pam;
  const PAGE = JSON.parse(document.getElementById("sessions-page").textContent);
  const tbody = document.querySelector("#session-table tbody");
  const empty = document.getElementById("session-empty");
  const liveOnly = document.getElementById("live-only");
  const REFRESH_MS = 5000;
  const LIVE = ["pending", "connecting", "active"];

  let request = 0; // the newest list request; older answers are dropped
  let shown = null; // the list on screen, to redraw only when it changed
  let timer = null;

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  // A supervisor can join once a node holds the session, that is once its owner opened it.
  function watchable(session) {
    return session.status === "active" || session.status === "connecting" || (session.status === "pending" && Boolean(session.node));
  }

  function terminalLink(session, label, title) {
    const link = document.createElement("a");
    link.className = "button";
    link.href = session.client_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = label;
    link.title = title;
    return link;
  }

  async function end(session, control) {
    const whose = session.owner === PAGE.userEmail ? "your session" : `${session.owner}'s session`;
    if (!confirm(`End ${whose} to ${session.hostname}? Everyone in it is disconnected.`)) return;
    control.disabled = true;
    try {
      await api("DELETE", `/api/sessions/${session.session_id}`);
      showError("");
      await load();
    } catch (error) {
      showError(error.message);
      control.disabled = false;
    }
  }

  function row(session) {
    const tr = document.createElement("tr");
    tr.dataset.session = session.session_id;
    tr.dataset.status = session.status;
    const own = session.owner === PAGE.userEmail;
    const live = LIVE.includes(session.status);
    cell(tr, `${session.username ? session.username + "@" : ""}${session.hostname}:${session.port}`);
    cell(tr, session.session_type);
    cell(tr, own ? `${session.owner} (you)` : session.owner);
    const status = cell(tr, session.status_message ? `${session.status}: ${session.status_message}` : session.status);
    status.className = "session-status";
    status.dataset.status = session.status;
    cell(tr, formatDate(session.started_at || session.created_at));
    cell(tr, session.ended_at ? formatDate(session.ended_at) : "—");
    cell(tr, `${size(session.bytes_in)} / ${size(session.bytes_out)}`);
    const actions = document.createElement("div");
    actions.className = "actions";
    if (live && own) {
      actions.append(terminalLink(session, "Open", "Open the terminal of your session"));
    } else if (live && PAGE.canWatchAny && watchable(session)) {
      actions.append(terminalLink(session, "Watch", "Watch this session (its owner sees that you do)"));
    }
    if (live && (own || PAGE.canTerminateAny)) {
      const stop = button("End", "danger", () => end(session, stop));
      actions.append(stop);
    }
    if (!live && session.recording && PAGE.canViewRecordings) {
      const play = document.createElement("a");
      play.className = "button";
      play.href = `/recordings/${session.recording}`;
      play.textContent = "Recording";
      play.title = "Play this session's recording";
      actions.append(play);
    }
    cell(tr, actions);
    return tr;
  }

  async function load() {
    const mine = ++request;
    const sessions = await api("GET", `/api/sessions${liveOnly.checked ? "?live=true" : ""}`);
    if (mine !== request) return;
    showError("");
    const text = JSON.stringify(sessions);
    if (text === shown) return; // unchanged: keep the rows (and the focus) as they are
    shown = text;
    tbody.replaceChildren(...sessions.map(row));
    empty.textContent = liveOnly.checked ? "No open sessions." : "No sessions.";
    empty.hidden = sessions.length > 0;
  }

  // Refresh after each answer (never two requests at once), and only while the page is seen.
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function refresh() {
    clearTimeout(timer);
    try { await load(); } catch (error) { showError(error.message); }
    if (!document.hidden) schedule(); // a hidden tab waits for visibilitychange
  }

  liveOnly.addEventListener("change", () => { shown = null; refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  refresh();
})();
