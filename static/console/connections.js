// Connections page: folder tree, details, create/edit form, sharing, health checks, import and
// export, all through the connection-manager API (/api/connections…). API data only ever
// reaches the page through textContent, attributes and form values, never as HTML.
"use strict";

(function () {
  const { api, csrfToken, formatDate, button, showError } = window.pam;
  const PAGE = JSON.parse(document.getElementById("connections-page").textContent);
  const DEFAULT_PORTS = Object.fromEntries(PAGE.protocols.map((p) => [p.value, p.defaultPort]));
  const PROTOCOL_LABELS = Object.fromEntries(PAGE.protocols.map((p) => [p.value, p.label]));
  const KEY_PROTOCOLS = PAGE.keyProtocols;
  // What opens as a session in the browser: the session broker's list (sessions.context_processors).
  const SESSION_PROTOCOLS = JSON.parse(document.getElementById("session-protocols").textContent);
  const RDP_KEYS = ["domain", "security", "resolution", "color_depth"];
  const HEALTH_BATCH = 500; // health checks per request
  const COLLAPSED_KEY = "pam.connections.collapsed";

  const $ = (id) => document.getElementById(id);

  // Build an element; string children become text nodes, so API data is never parsed as HTML.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const state = {
    folders: new Map(), // id -> folder (with .connections)
    children: new Map(), // parent folder id (null for the top) -> its folders, in order
    totals: new Map(), // folder id -> connections in it and its subfolders
    connections: new Map(), // id -> summary
    ungrouped: [],
    shared: [],
    visibleIds: [], // connections the current filter shows, in tree order
    selected: null, // {kind: "connection"|"folder", id}
    detail: null, // the connection detail shown or being edited
    editing: null, // null when creating
    healthErrors: new Map(),
    collapsed: new Set(readCollapsed()),
    detailRequest: 0,
  };

  function readCollapsed() {
    try { return JSON.parse(localStorage.getItem(COLLAPSED_KEY) || "[]"); } catch { return []; }
  }

  function saveCollapsed() {
    try { localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...state.collapsed])); } catch { /* private mode */ }
  }

  const bySortOrder = (a, b) => a.sortOrder - b.sortOrder; // stable: keeps the API's name order

  function report(error) { showError(error.message || String(error)); }

  // --- loading ---------------------------------------------------------------------------

  async function loadTree() {
    const data = await api("GET", "/api/connections");
    state.folders = new Map(data.groups.map((g) => [g.id, g]));
    state.children = new Map();
    for (const folder of data.groups) {
      // A folder whose parent is not in this tree (it should not happen) shows at the top.
      const parent = folder.parentId !== null && state.folders.has(folder.parentId) ? folder.parentId : null;
      if (!state.children.has(parent)) state.children.set(parent, []);
      state.children.get(parent).push(folder);
    }
    for (const list of state.children.values()) list.sort(bySortOrder);
    state.totals = new Map();
    const total = (folder) => {
      let n = folder.connections.length;
      for (const child of childFolders(folder.id)) n += total(child);
      state.totals.set(folder.id, n);
      return n;
    };
    childFolders(null).forEach(total);
    state.ungrouped = data.ungrouped;
    state.shared = data.sharedConnections;
    state.connections = new Map();
    for (const folder of data.groups) for (const c of folder.connections) state.connections.set(c.id, c);
    for (const c of [...data.ungrouped, ...data.sharedConnections]) state.connections.set(c.id, c);
    renderTree();
    $("conn-tree").setAttribute("aria-busy", "false");
  }

  async function loadTags() {
    const { tags } = await api("GET", "/api/connections/tags");
    const select = $("conn-tag");
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, "All tags"), ...tags.map((t) => el("option", { value: t }, t)));
    select.value = tags.includes(current) ? current : "";
  }

  async function refresh() {
    await Promise.all([loadTree(), loadTags()]);
  }

  // --- folders ---------------------------------------------------------------------------

  const isAddressBook = (folder) => Boolean(folder && folder.scope);

  function childFolders(parentId) {
    return state.children.get(parentId) || [];
  }

  function folderPath(id) {
    const names = [];
    const seen = new Set();
    for (let folder = state.folders.get(id); folder && !seen.has(folder.id); folder = state.folders.get(folder.parentId)) {
      seen.add(folder.id);
      names.unshift(folder.name);
    }
    return names.join(" / ");
  }

  function descendants(id) {
    const out = [];
    for (const child of childFolders(id)) out.push(child, ...descendants(child.id));
    return out;
  }

  // Personal folders (and address-book folders for their managers) as <option>s, by path.
  function folderOptions(select, { blank, includeAddressBook, current }) {
    const options = [el("option", { value: "" }, blank)];
    const walk = (parentId, depth) => {
      for (const folder of childFolders(parentId)) {
        if (isAddressBook(folder)) {
          if (includeAddressBook) options.push(el("option", { value: folder.id }, `Address book: ${folder.scope} / ${folder.name}`));
          continue;
        }
        options.push(el("option", { value: folder.id }, "\u2003".repeat(depth) + folder.name));
        walk(folder.id, depth + 1);
      }
    };
    walk(null, 0);
    if (current && !options.some((o) => o.value === current)) {
      options.push(el("option", { value: current }, state.folders.has(current) ? folderPath(current) : "(current folder)"));
    }
    select.replaceChildren(...options);
  }

  // --- health ----------------------------------------------------------------------------

  function healthText(health, error) {
    if (!health || health.status === "unknown") return "Not checked yet";
    const when = health.checkedAt ? `, checked ${formatDate(health.checkedAt)}` : "";
    if (health.status === "reachable") {
      return `Reachable${health.latencyMs !== null && health.latencyMs !== undefined ? ` in ${health.latencyMs} ms` : ""}${when}`;
    }
    return `Unreachable${error ? `: ${error}` : ""}${when}`;
  }

  function healthDot(summary) {
    const health = summary.health || { status: "unknown" };
    const text = healthText(health, state.healthErrors.get(summary.id));
    return el("span", {
      className: "health-dot",
      title: text,
      role: "img",
      "aria-label": text,
      dataset: { health: health.status, healthFor: summary.id },
    });
  }

  function updateDots(id) {
    const summary = state.connections.get(id);
    if (!summary) return;
    for (const dot of document.querySelectorAll(`[data-health-for="${CSS.escape(id)}"]`)) {
      dot.replaceWith(healthDot(summary));
    }
    if (state.detail && state.detail.id === id) {
      const text = $("detail-health-text");
      if (text) text.textContent = healthText(summary.health, state.healthErrors.get(id));
    }
  }

  function applyHealth(results) {
    const now = new Date().toISOString();
    for (const r of results) {
      const summary = state.connections.get(r.id);
      if (!summary) continue;
      summary.health = { status: r.reachable ? "reachable" : "unreachable", latencyMs: r.latencyMs, checkedAt: now };
      if (r.error) state.healthErrors.set(r.id, r.error);
      else state.healthErrors.delete(r.id);
      updateDots(r.id);
    }
  }

  async function checkHealth(ids, status) {
    let reachable = 0;
    for (let start = 0; start < ids.length; start += HEALTH_BATCH) {
      status(`Checking ${start + 1}–${Math.min(start + HEALTH_BATCH, ids.length)} of ${ids.length}…`);
      const batch = ids.slice(start, start + HEALTH_BATCH).map((id) => ({ id }));
      const { results } = await api("POST", "/api/connections/health-check", { checks: batch });
      applyHealth(results);
      reachable += results.filter((r) => r.reachable).length;
    }
    return reachable;
  }

  async function checkVisible() {
    const ids = [...state.visibleIds];
    const status = (text) => { $("check-status").textContent = text; };
    if (!ids.length) { status("Nothing to check."); return; }
    const trigger = $("check-now");
    trigger.disabled = true;
    try {
      const reachable = await checkHealth(ids, status);
      status(`${reachable} of ${ids.length} reachable.`);
    } catch (error) {
      status("");
      report(error);
    } finally {
      trigger.disabled = false;
    }
  }

  // --- the tree --------------------------------------------------------------------------

  function currentFilter() {
    return {
      term: $("conn-search").value.trim().toLowerCase(),
      tag: $("conn-tag").value,
      protocol: $("conn-protocol").value,
    };
  }

  function matches(c, filter) {
    if (filter.protocol && c.protocol !== filter.protocol) return false;
    if (filter.tag && !c.tags.includes(filter.tag)) return false;
    if (!filter.term) return true;
    return [c.name, c.displayName, c.host, c.url, ...c.tags].some((v) => v && v.toLowerCase().includes(filter.term));
  }

  function isSelected(kind, id) {
    return state.selected && state.selected.kind === kind && state.selected.id === id;
  }

  function connectionItem(c) {
    state.visibleIds.push(c.id);
    const label = c.displayName || c.name;
    const where = c.protocol === "web" ? c.url : `${c.host}:${c.port}`;
    const row = el("div", { className: "tree-row conn-row" + (isSelected("connection", c.id) ? " selected" : "") },
      healthDot(c),
      el("button", { type: "button", className: "tree-label", title: `${label} — ${where}` }, label),
      el("span", { className: "proto" }, c.protocol));
    row.querySelector(".tree-label").addEventListener("click", () => selectConnection(c.id));
    return el("li", {
      className: "tree-conn",
      role: "treeitem",
      "aria-selected": isSelected("connection", c.id) ? "true" : "false",
      dataset: { connectionId: c.id, name: c.name },
    }, row);
  }

  function addressBookMarker(folder) {
    return el("span", { className: "badge ab-marker", title: `Address-book folder (${folder.scope} scope)` }, "address book");
  }

  // The connections of a folder and its subfolders that pass the filter.
  function matchesIn(folder, filter) {
    const found = folder.connections.filter((c) => matches(c, filter));
    for (const child of childFolders(folder.id)) found.push(...matchesIn(child, filter));
    return found;
  }

  // A folder and what it holds, or null when a filter is on and nothing inside matches.
  function folderItem(folder, filter, filtering) {
    const matched = filtering ? matchesIn(folder, filter) : null;
    if (filtering && !matched.length) return null;
    const open = filtering || !state.collapsed.has(folder.id);
    const twisty = el("button", {
      type: "button",
      className: "twisty",
      "aria-label": `${open ? "Collapse" : "Expand"} ${folder.name}`,
      "aria-expanded": open ? "true" : "false",
    }, open ? "▾" : "▸");
    twisty.addEventListener("click", () => {
      if (state.collapsed.has(folder.id)) state.collapsed.delete(folder.id);
      else state.collapsed.add(folder.id);
      saveCollapsed();
      renderTree();
    });
    const labelButton = el("button", { type: "button", className: "tree-label" }, folder.name);
    labelButton.addEventListener("click", () => selectFolder(folder.id));
    const row = el("div", { className: "tree-row folder-row" + (isSelected("folder", folder.id) ? " selected" : "") },
      twisty,
      el("span", { className: "folder-icon", "aria-hidden": "true" }),
      labelButton,
      isAddressBook(folder) ? addressBookMarker(folder) : null,
      el("span", { className: "count muted", title: "connections inside" },
        String(filtering ? matched.length : state.totals.get(folder.id))));
    const item = el("li", {
      className: "tree-folder",
      role: "treeitem",
      "aria-expanded": open ? "true" : "false",
      dataset: { folderId: folder.id, name: folder.name },
    }, row);
    if (open) {
      const children = [
        ...childFolders(folder.id).map((f) => folderItem(f, filter, filtering)).filter(Boolean),
        ...[...folder.connections].sort(bySortOrder).filter((c) => matches(c, filter)).map(connectionItem),
      ];
      if (children.length) item.appendChild(el("ul", { role: "group" }, children));
      else item.appendChild(el("p", { className: "tree-empty muted" }, "Empty folder"));
    } else {
      // A collapsed folder's content is not rendered (big trees stay quick), but "Check now" covers it.
      for (const c of matchesIn(folder, filter)) state.visibleIds.push(c.id);
    }
    return item;
  }

  function countIn(folderId) {
    return state.totals.get(folderId) || 0;
  }

  function renderTree() {
    const filter = currentFilter();
    const filtering = Boolean(filter.term || filter.tag || filter.protocol);
    state.visibleIds = [];
    const top = childFolders(null);
    const mine = [
      ...top.filter((f) => !isAddressBook(f)).map((f) => folderItem(f, filter, filtering)),
      ...top.filter(isAddressBook).map((f) => folderItem(f, filter, filtering)),
      ...[...state.ungrouped].sort(bySortOrder).filter((c) => matches(c, filter)).map(connectionItem),
    ].filter(Boolean);
    const shared = state.shared.filter((c) => matches(c, filter)).map(connectionItem);

    const tree = $("conn-tree");
    tree.replaceChildren(
      el("section", { id: "my-section", className: "tree-section" },
        el("h3", {}, "My connections"),
        mine.length
          ? el("ul", { className: "tree", role: "tree", "aria-label": "My connections" }, mine)
          : el("p", { className: "muted tree-empty" }, filtering ? "Nothing matches." : emptyText())),
      el("section", { id: "shared-section", className: "tree-section" },
        el("h3", {}, "Shared with me"),
        shared.length
          ? el("ul", { className: "tree", role: "tree", "aria-label": "Shared with me" }, shared)
          : el("p", { className: "muted tree-empty" }, filtering ? "Nothing matches." : "Nothing is shared with you.")),
    );
  }

  function emptyText() {
    return PAGE.canCreate ? "No connections yet. Create one with “New connection”." : "You have no connections of your own.";
  }

  function markSelection() {
    for (const node of document.querySelectorAll("#conn-tree .tree-row.selected")) node.classList.remove("selected");
    for (const node of document.querySelectorAll('#conn-tree [aria-selected="true"]')) node.setAttribute("aria-selected", "false");
    if (!state.selected) return;
    const attribute = state.selected.kind === "connection" ? "data-connection-id" : "data-folder-id";
    const item = document.querySelector(`#conn-tree li[${attribute}="${CSS.escape(state.selected.id)}"]`);
    if (!item) return;
    item.firstElementChild.classList.add("selected");
    if (state.selected.kind === "connection") item.setAttribute("aria-selected", "true");
  }

  // Expand the folders above ``folderId`` (and it), so what is selected can be seen.
  function reveal(folderId) {
    let changed = false;
    for (let id = folderId; id && state.folders.has(id); id = state.folders.get(id).parentId) {
      changed = state.collapsed.delete(id) || changed;
    }
    if (changed) { saveCollapsed(); renderTree(); }
  }

  // --- the right-hand pane -----------------------------------------------------------------

  const PANES = ["pane-empty", "conn-detail", "folder-detail", "conn-form", "folder-form"];

  function showPane(id) {
    for (const pane of PANES) $(pane).hidden = pane !== id;
  }

  function select(kind, id) {
    state.detailRequest += 1; // a connection's detail still loading no longer replaces this choice
    state.selected = kind ? { kind, id } : null;
    history.replaceState(null, "", id ? `#${id}` : location.pathname);
    markSelection();
  }

  function clearSelection() {
    select(null, null);
    state.detail = null;
    showPane("pane-empty");
  }

  // --- connection detail -------------------------------------------------------------------

  function rights(detail) {
    const summary = state.connections.get(detail.id);
    const own = summary ? summary.own : detail.ownerId === PAGE.userId;
    const addressBook = detail.ownerId === null;
    return {
      own,
      edit: own || PAGE.canEditAny || (addressBook && PAGE.canManageAddressBook),
      delete: own || PAGE.canDeleteAny || (addressBook && PAGE.canManageAddressBook),
      share: own && PAGE.canShare,
      // Only rows of the user's own tree can be ordered; shared ones have no siblings here.
      reorder: Boolean(summary) && !state.shared.includes(summary) && (own || (addressBook && PAGE.canManageAddressBook)),
    };
  }

  async function selectConnection(id) {
    const summary = state.connections.get(id);
    if (summary && summary.groupId) reveal(summary.groupId);
    select("connection", id);
    const request = ++state.detailRequest;
    try {
      const detail = await api("GET", `/api/connections/${encodeURIComponent(id)}`);
      if (request !== state.detailRequest) return; // a later click won
      state.detail = detail;
      renderDetail(detail);
      showError("");
    } catch (error) {
      if (request === state.detailRequest) report(error);
    }
  }

  function fact(list, term, ...value) {
    list.append(el("dt", {}, term), el("dd", {}, ...value));
  }

  function yesNo(value) { return value ? "yes" : "no"; }

  function renderDetail(d) {
    const can = rights(d);
    const summary = state.connections.get(d.id) || { id: d.id, health: d.health };
    const pane = $("conn-detail");
    const actions = el("div", { className: "actions detail-actions" });
    const connect = canOpenSession(d) ? connectForm(d) : null;
    if (connect) {
      const open = button("Open session", "primary", () => startSession(d, connect, open));
      open.id = "open-session";
      actions.append(open);
    }
    if (can.edit) actions.append(button("Edit", "", () => openConnectionForm(d)));
    if (can.share) actions.append(button("Share", "", () => openShare(d).catch(report)));
    actions.append(button("Check", "", () => checkOne(d.id)));
    if (can.reorder) {
      const siblings = connectionSiblings(d.id);
      const index = siblings.findIndex((s) => s.id === d.id);
      const up = button("Move up", "", () => moveConnection(d.id, -1));
      const down = button("Move down", "", () => moveConnection(d.id, 1));
      up.disabled = index <= 0;
      down.disabled = index < 0 || index === siblings.length - 1;
      actions.append(up, down);
    }
    if (can.delete) actions.append(button("Delete", "danger", () => deleteConnection(d)));

    const facts = el("dl", { className: "facts" });
    fact(facts, "Name", d.name);
    if (d.displayName) fact(facts, "Display name", d.displayName);
    fact(facts, "Protocol", PROTOCOL_LABELS[d.protocol] || d.protocol);
    if (d.protocol === "web") fact(facts, "URL", d.url || "—");
    else fact(facts, "Host", el("code", {}, `${d.host}:${d.port}`));
    fact(facts, "Username", d.username || "—");
    const stored = [d.hasPassword && "password", d.hasPrivateKey && "private key"].filter(Boolean);
    fact(facts, "Credentials", stored.length ? `${stored.join(" and ")} stored` : "none stored",
      d.promptCredentials ? el("span", { className: "muted" }, " · asks at connect") : null);
    fact(facts, "Folder", d.groupId ? folderPath(d.groupId) || "(not in your tree)" : "—");
    fact(facts, "Tags", d.tags.length ? d.tags.map((t) => el("span", { className: "tag" }, t)) : "—");
    if (d.jumpHosts.length) {
      fact(facts, "Jump hosts", el("ol", { className: "plain-list numbered" }, d.jumpHosts.map((h) => {
        const secrets = [h.hasPassword && "password", h.hasPrivateKey && "key"].filter(Boolean);
        const note = secrets.length ? el("span", { className: "muted" }, ` (${secrets.join(", ")} stored)`) : null;
        return el("li", {}, `${h.username}@${h.host}:${h.port}`, note);
      })));
    }
    const extra = d.extraConfig || {};
    if (d.protocol === "rdp") {
      fact(facts, "Domain", extra.domain || "—");
      fact(facts, "Security", extra.security || "negotiate");
      fact(facts, "Resolution", extra.resolution || "default");
      fact(facts, "Colour depth", extra.color_depth ? `${extra.color_depth} bit` : "default");
    }
    if (d.protocol === "rdp" || d.protocol === "web" || d.skipCertValidation) {
      fact(facts, "Ignore certificate", yesNo(d.skipCertValidation));
    }
    const others = Object.keys(extra).filter((k) => d.protocol !== "rdp" || !RDP_KEYS.includes(k));
    if (others.length) {
      fact(facts, "Other settings", el("ul", { className: "plain-list" },
        others.map((k) => el("li", {}, el("code", {}, k), ` = ${JSON.stringify(extra[k])}`))));
    }
    fact(facts, "Recording", d.recordingEnabled ? "on" : "off");
    fact(facts, "Shared with everyone", yesNo(d.shared));
    if (can.own && d.shares.length) {
      fact(facts, "Shared with", el("ul", { className: "plain-list" }, d.shares.map((s) => el("li", {}, shareLabel(s)))));
    }
    if (!can.own) fact(facts, "Owner", d.ownerId === null ? "address book" : "someone else (shared with you)");
    const health = healthText(summary.health, state.healthErrors.get(d.id));
    fact(facts, "Health", healthDot(summary), " ", el("span", { id: "detail-health-text" }, health));
    fact(facts, "Created", formatDate(d.createdAt));
    fact(facts, "Updated", formatDate(d.updatedAt));

    const tunnels = tunnelPanel(d);
    pane.replaceChildren(
      el("div", { className: "detail-head" },
        el("h2", { id: "detail-title" }, d.displayName || d.name),
        el("span", { className: "badge" }, PROTOCOL_LABELS[d.protocol] || d.protocol)),
      actions,
      connect,
      facts,
      tunnels);
    showPane("conn-detail");
    if (tunnels) watchTunnels(d, tunnels);
  }

  // --- tunnels -------------------------------------------------------------------------------

  // A connection's tunnels run on a PAM worker (127.0.0.1 of that machine); the table shows what
  // the worker last reported, read again every few seconds while the connection is on screen.
  const TUNNEL_POLL_MS = 3000;
  const ACTIVE_TUNNEL_STATES = ["starting", "up", "down", "stopping"];
  const TUNNEL_STATE_LABELS = {
    starting: "starting", up: "up", down: "down, retrying", stopping: "stopping", stopped: "stopped", failed: "failed",
  };

  function formatBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
  }

  function tunnelPanel(d) {
    if (d.protocol !== "ssh" || !d.tunnels.length) return null;
    const controls = el("div", { className: "actions" });
    if (PAGE.canConnect) {
      const start = button("Start tunnels", "", () => tunnelAction(d, "start", panel));
      start.id = "tunnels-start";
      controls.append(start);
    }
    if (PAGE.canConnect || PAGE.canStopAnyTunnel) {
      const stop = button("Stop tunnels", "", () => tunnelAction(d, "stop", panel));
      stop.id = "tunnels-stop";
      controls.append(stop);
    }
    const panel = el("section", { id: "tunnels", className: "tunnels", "aria-labelledby": "tunnels-title" },
      el("div", { className: "section-head" }, el("h3", { id: "tunnels-title" }, "Tunnels"), controls),
      el("p", { id: "tunnels-note", className: "muted small" }, "Local ports open on 127.0.0.1 of the PAM worker holding them."),
      el("p", { id: "tunnels-error", className: "error small", role: "alert", hidden: true }),
      el("table", { className: "table tunnel-table" },
        el("thead", {}, el("tr", {}, el("th", {}, "Local"), el("th", {}, "Remote"), el("th", {}, "State"), el("th", {}, "Traffic"))),
        el("tbody", { id: "tunnel-rows" })));
    const unknown = { state: "", message: "", bindAddress: "127.0.0.1", configured: true, connections: 0, bytesIn: 0, bytesOut: 0 };
    renderTunnels(panel, { tunnels: d.tunnels.map((t) => ({ ...unknown, ...t })) });
    return panel;
  }

  function renderTunnels(panel, data) {
    const rows = data.tunnels.map((t) => el("tr", { dataset: { localPort: String(t.localPort), state: t.state } },
      el("td", {}, el("code", {}, `${t.bindAddress}:${t.localPort}`),
        t.configured ? null : el("span", { className: "muted small" }, " (removed, still running)")),
      el("td", {}, el("code", {}, `${t.remoteHost}:${t.remotePort}`)),
      el("td", {},
        el("span", { className: "tunnel-state", dataset: { state: t.state } }, TUNNEL_STATE_LABELS[t.state] || "…"),
        t.message ? el("div", { className: "muted small tunnel-message" }, t.message) : null),
      el("td", { className: "small" },
        t.state ? `${t.connections} connection(s) · ${formatBytes(t.bytesIn)} in · ${formatBytes(t.bytesOut)} out` : "")));
    panel.querySelector("#tunnel-rows").replaceChildren(...rows);
    const start = panel.querySelector("#tunnels-start");
    const stop = panel.querySelector("#tunnels-stop");
    const known = data.tunnels.every((t) => t.state);
    if (start) start.disabled = known && !data.tunnels.some((t) => t.configured && !ACTIVE_TUNNEL_STATES.includes(t.state));
    if (stop) stop.disabled = known && !data.tunnels.some((t) => ACTIVE_TUNNEL_STATES.includes(t.state) && t.state !== "stopping");
    if (data.portRange) {
      panel.querySelector("#tunnels-note").textContent =
        `Local ports open on 127.0.0.1 of the PAM worker holding them (allowed range ${data.portRange.min}–${data.portRange.max}).`;
    }
  }

  function tunnelError(panel, message) {
    const box = panel.querySelector("#tunnels-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // Poll while this connection's panel is on the page; a new detail replaces the panel and so
  // ends the loop.
  function watchTunnels(d, panel) {
    const path = `/api/connections/${encodeURIComponent(d.id)}/tunnels`;
    const tick = async () => {
      if (!panel.isConnected) return;
      if (!document.hidden && !$("conn-detail").hidden) {
        try {
          const data = await api("GET", path);
          if (!panel.isConnected) return;
          renderTunnels(panel, data);
        } catch (error) { tunnelError(panel, error.message); }
      }
      setTimeout(tick, TUNNEL_POLL_MS);
    };
    tick();
  }

  async function tunnelAction(d, verb, panel) {
    const controls = [...panel.querySelectorAll(".section-head button")];
    for (const control of controls) control.disabled = true;
    try {
      const data = await api("POST", `/api/connections/${encodeURIComponent(d.id)}/tunnels/${verb}`);
      tunnelError(panel, "");
      renderTunnels(panel, data);
    } catch (error) {
      tunnelError(panel, error.message);
      for (const control of controls) control.disabled = false;
    }
  }

  // --- opening a session ---------------------------------------------------------------------

  function canOpenSession(d) {
    return PAGE.canConnect && SESSION_PROTOCOLS.includes(d.protocol);
  }

  // session-broker: a connection that asks at connect time, or has nothing stored to log in with.
  function asksForCredentials(d) {
    return d.promptCredentials || !(d.hasPassword || d.hasPrivateKey);
  }

  // The inline form for credentials typed at connect time: sent once with the request that opens
  // the session, never stored, and cleared as soon as the session is open.
  function connectForm(d) {
    const username = el("input", { id: "connect-username", name: "username", maxlength: "255", autocomplete: "username", required: true });
    username.value = d.username || "";
    const password = el("input", { id: "connect-password", name: "password", type: "password", autocomplete: "current-password" });
    const error = el("div", { id: "connect-error", className: "form-error", role: "alert", hidden: true });
    const submit = el("button", { type: "submit", className: "primary", id: "connect-submit" }, "Connect");
    const form = el("form", { id: "connect-form", className: "connect-form", hidden: true, novalidate: true, "aria-label": "Credentials for this session" },
      el("p", { className: "muted small" }, "Credentials for this session only: they are used once and never stored."),
      error,
      el("div", { className: "form-grid" },
        el("div", { className: "field" }, el("label", { for: "connect-username" }, "Username"), username),
        el("div", { className: "field" }, el("label", { for: "connect-password" }, "Password"), password)),
      el("div", { className: "actions" }, submit, button("Cancel", "", () => closeConnectForm(form))));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const credentials = { username: username.value.trim(), password: password.value };
      startSession(d, form, submit, credentials);
    });
    return form;
  }

  function showConnectForm(form, text) {
    const error = form.querySelector("#connect-error");
    error.textContent = text || "";
    error.hidden = !text;
    form.hidden = false;
    const username = form.querySelector("#connect-username");
    (username.value ? form.querySelector("#connect-password") : username).focus();
  }

  function closeConnectForm(form) {
    form.querySelector("#connect-password").value = "";
    form.querySelector("#connect-error").hidden = true;
    form.hidden = true;
  }

  // POST /api/connections/:id/connect, then open the terminal in a new tab (or this one, if the
  // browser blocks the new tab). Without credentials the form shows first when the connection is
  // known to ask for them, and whenever the API answers that it does.
  async function startSession(d, form, control, credentials) {
    if (!credentials && asksForCredentials(d)) {
      showConnectForm(form);
      return;
    }
    if (credentials && asksForCredentials(d) && !credentials.password) {
      showConnectForm(form, "Type the password for this session.");
      return;
    }
    const body = {};
    if (credentials) {
      if (credentials.username) body.username = credentials.username;
      if (credentials.password) body.password = credentials.password;
    }
    control.disabled = true;
    try {
      const created = await api("POST", `/api/connections/${encodeURIComponent(d.id)}/connect`, body);
      closeConnectForm(form);
      showError("");
      const tab = window.open(created.client_url, "_blank");
      if (!tab) location.assign(created.client_url);
    } catch (error) {
      if (error.status === 400 && error.fields && error.fields.password) {
        showConnectForm(form, credentials ? fieldText(error.fields.password) || error.message : "");
      } else if (!form.hidden) {
        showConnectForm(form, error.message);
      } else {
        report(error);
      }
    } finally {
      control.disabled = false;
    }
  }

  function fieldText(messages) {
    return Array.isArray(messages) ? messages.join(" ") : String(messages || "");
  }

  async function checkOne(id) {
    try { await checkHealth([id], () => {}); showError(""); } catch (error) { report(error); }
  }

  async function deleteConnection(d) {
    if (!confirm(`Delete the connection “${d.name}”? This cannot be undone.`)) return;
    try {
      await api("DELETE", `/api/connections/${encodeURIComponent(d.id)}`);
      clearSelection();
      showError("");
      await refresh();
    } catch (error) { report(error); }
  }

  function connectionSiblings(id) {
    const summary = state.connections.get(id);
    const folder = summary.groupId && state.folders.get(summary.groupId);
    return [...(folder ? folder.connections : state.ungrouped)].sort(bySortOrder);
  }

  async function moveConnection(id, step) {
    await reorder("/api/connections/reorder", connectionSiblings(id), id, step);
    await selectConnection(id);
  }

  // Send the new order of ``siblings`` after moving ``id`` by ``step`` (−1 up, +1 down).
  async function reorder(path, siblings, id, step) {
    const index = siblings.findIndex((s) => s.id === id);
    const target = index + step;
    if (index < 0 || target < 0 || target >= siblings.length) return;
    [siblings[index], siblings[target]] = [siblings[target], siblings[index]];
    try {
      await api("PUT", path, { items: siblings.map((s, i) => ({ id: s.id, sortOrder: i })) });
      showError("");
      await loadTree();
    } catch (error) { report(error); }
  }

  // --- folder detail -----------------------------------------------------------------------

  function selectFolder(id) {
    const folder = state.folders.get(id);
    if (!folder) return;
    if (folder.parentId) reveal(folder.parentId);
    select("folder", id);
    state.detail = null;
    const addressBook = isAddressBook(folder);
    const editable = !addressBook && PAGE.canCreate;
    const subs = descendants(id);
    const actions = el("div", { className: "actions detail-actions" });
    if (PAGE.canCreate && (!addressBook || PAGE.canManageAddressBook)) {
      actions.append(button("New connection here", "", () => openConnectionForm(null, id)));
    }
    if (editable) {
      const siblings = childFolders(state.folders.has(folder.parentId) ? folder.parentId : null).filter((f) => !isAddressBook(f));
      const index = siblings.findIndex((f) => f.id === id);
      const move = (step) => reorder("/api/connections/groups/reorder", [...siblings], id, step).then(() => selectFolder(id));
      const up = button("Move up", "", () => move(-1));
      const down = button("Move down", "", () => move(1));
      up.disabled = index <= 0;
      down.disabled = index === siblings.length - 1;
      actions.append(
        button("New subfolder", "", () => openFolderForm(null, id)),
        button("Rename or move", "", () => openFolderForm(folder)),
        up,
        down,
        button("Delete folder", "danger", () => deleteFolder(folder)),
      );
    }
    const facts = el("dl", { className: "facts" });
    fact(facts, "Path", folderPath(id));
    fact(facts, "Connections", String(countIn(id)));
    fact(facts, "Subfolders", String(subs.length));
    if (addressBook) {
      fact(facts, "Address book", `${folder.scope} scope`);
      if (folder.description) fact(facts, "Description", folder.description);
    }
    $("folder-detail").replaceChildren(
      el("div", { className: "detail-head" },
        el("h2", { id: "folder-title" }, folder.name),
        addressBook ? addressBookMarker(folder) : null),
      actions,
      addressBook
        ? el("p", { className: "muted small" }, "Address-book folders belong to the installation and are managed in the address book.")
        : null,
      facts);
    showPane("folder-detail");
  }

  async function deleteFolder(folder) {
    const subs = descendants(folder.id).length;
    const count = countIn(folder.id);
    const message = `Delete the folder “${folder.name}” together with its ${count} connection(s)` +
      (subs ? ` and ${subs} subfolder(s)` : "") + "? The connections are deleted too. This cannot be undone.";
    if (!confirm(message)) return;
    try {
      await api("DELETE", `/api/connections/groups/${encodeURIComponent(folder.id)}`);
      state.collapsed.delete(folder.id);
      saveCollapsed();
      clearSelection();
      showError("");
      await refresh();
    } catch (error) { report(error); }
  }

  // --- errors in forms ---------------------------------------------------------------------

  // Flatten the API's ``fields`` map into [path, message] pairs: {"jumpHosts": {"1": {"host": [..]}}}
  // becomes ["jumpHosts[1].host", "…"]. DRF reports list items by index, as a dict or a list.
  function fieldErrors(fields, path = "", out = []) {
    if (Array.isArray(fields)) {
      if (fields.every((v) => typeof v === "string")) {
        if (fields.length) out.push([path, fields.join(" ")]);
      } else {
        fields.forEach((v, i) => fieldErrors(v, `${path}[${i}]`, out));
      }
    } else if (fields && typeof fields === "object") {
      for (const [key, value] of Object.entries(fields)) {
        const next = /^\d+$/.test(key) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
        fieldErrors(value, next, out);
      }
    } else if (fields !== undefined && fields !== null && fields !== "") {
      out.push([path, String(fields)]);
    }
    return out;
  }

  function clearErrors(form) {
    for (const node of form.querySelectorAll(".field-error")) { node.textContent = ""; node.hidden = true; }
    for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
    const box = form.querySelector(".form-error");
    box.textContent = "";
    box.hidden = true;
  }

  function addError(node, text) {
    node.textContent = node.textContent ? `${node.textContent} ${text}` : text;
    node.hidden = false;
    const field = node.closest(".field, .row-item");
    if (field) field.classList.add("invalid");
  }

  // Show the API's message above the form and each field's message next to its field; a
  // nested path without its own slot goes to the nearest enclosing one ("jumpHosts[1]").
  function showFormErrors(form, error) {
    clearErrors(form);
    const box = form.querySelector(".form-error");
    box.textContent = error.message;
    box.hidden = false;
    for (const [path, message] of fieldErrors(error.fields)) {
      let prefix = path;
      let slot = null;
      while (prefix) {
        slot = form.querySelector(`.field-error[data-for="${CSS.escape(prefix)}"]`);
        if (slot) break;
        const cut = Math.max(prefix.lastIndexOf("."), prefix.lastIndexOf("["));
        prefix = cut > 0 ? prefix.slice(0, cut) : "";
      }
      if (slot) addError(slot, prefix === path ? message : `${path.slice(prefix.length).replace(/^\./, "")}: ${message}`);
    }
    const first = form.querySelector(".field-error:not([hidden])");
    (first || box).scrollIntoView({ block: "nearest" });
  }

  // --- connection form ---------------------------------------------------------------------

  const form = $("conn-form");
  const hops = $("cf-hops");
  const tunnels = $("cf-tunnels");

  let formProtocol = null; // the protocol the form showed before the last change

  function protocol() { return $("cf-protocol").value; }

  function applyProtocol(previous) {
    const current = protocol();
    for (const node of form.querySelectorAll("[data-protocols]")) {
      node.hidden = !node.dataset.protocols.split(" ").includes(current);
    }
    const port = $("cf-port");
    if (previous && port.value && Number(port.value) === DEFAULT_PORTS[previous]) port.value = "";
    port.placeholder = String(DEFAULT_PORTS[current]);
  }

  // An edit that moves the target or its account drops the stored secrets unless the editor may
  // read them (connections.services.connections.moved_secrets): say so before saving.
  function targetMoved() {
    const d = state.editing;
    if (!d || PAGE.canRevealCredentials) return false;
    const proto = protocol();
    if (proto !== d.protocol || $("cf-username").value.trim() !== d.username) return true;
    const chainKept = hops.children.length === d.jumpHosts.length && [...hops.children].every(unchangedHop);
    const extra = d.extraConfig || {};
    const rdpChanged = proto === "rdp" &&
      ($("cf-domain").value.trim() !== (extra.domain || "") || $("cf-security").value !== (extra.security || ""));
    const certChanged = (proto === "rdp" || proto === "web") && $("cf-skip-cert").checked !== d.skipCertValidation;
    if (!chainKept || rdpChanged || certChanged) return true;
    if (proto === "web") return $("cf-url").value.trim() !== d.url;
    const port = portValue($("cf-port"));
    return $("cf-host").value.trim() !== d.host || (port === null ? DEFAULT_PORTS[proto] : port) !== d.port;
  }

  function updateSecretHints() {
    const moved = targetMoved();
    for (const hint of ["cf-password-hint", "cf-private-key-hint"]) {
      $(hint).textContent = moved
        ? "stored, but the target changed — enter it again or it is dropped"
        : "stored — leave blank to keep";
    }
  }

  function setSecret(input, hint, clearLabel, stored) {
    input.value = "";
    input.disabled = false;
    $(hint).hidden = !stored;
    $(clearLabel).hidden = !stored;
    $(clearLabel).querySelector("input").checked = false;
  }

  function openConnectionForm(detail, folderId) {
    state.editing = detail;
    clearErrors(form);
    form.reset();
    hops.replaceChildren();
    tunnels.replaceChildren();
    $("conn-form-title").textContent = detail ? `Edit “${detail.name}”` : "New connection";
    $("conn-form-save").textContent = detail ? "Save changes" : "Create connection";
    folderOptions($("cf-group"), {
      blank: "— no folder —",
      includeAddressBook: PAGE.canManageAddressBook,
      current: detail ? detail.groupId : folderId,
    });
    if (detail) {
      $("cf-name").value = detail.name;
      $("cf-display-name").value = detail.displayName;
      $("cf-protocol").value = detail.protocol;
      $("cf-host").value = detail.host;
      $("cf-port").value = detail.protocol === "web" ? "" : String(detail.port);
      $("cf-url").value = detail.url;
      $("cf-username").value = detail.username;
      $("cf-group").value = detail.groupId || "";
      $("cf-tags").value = detail.tags.join(", ");
      $("cf-skip-cert").checked = detail.skipCertValidation;
      $("cf-recording").checked = detail.recordingEnabled;
      $("cf-prompt").checked = detail.promptCredentials;
      if ($("cf-shared")) $("cf-shared").checked = detail.shared;
      const extra = detail.extraConfig || {};
      $("cf-domain").value = extra.domain || "";
      $("cf-security").value = extra.security || "";
      $("cf-resolution").value = extra.resolution || "";
      $("cf-color-depth").value = extra.color_depth ? String(extra.color_depth) : "";
      detail.jumpHosts.forEach((hop, index) => addHop(hop, index));
      detail.tunnels.forEach((tunnel) => addTunnel(tunnel));
    } else {
      $("cf-protocol").value = "ssh";
      $("cf-group").value = folderId || "";
      $("cf-recording").checked = true;
    }
    setSecret($("cf-password"), "cf-password-hint", "cf-password-clear-label", detail && detail.hasPassword);
    setSecret($("cf-private-key"), "cf-private-key-hint", "cf-private-key-clear-label", detail && detail.hasPrivateKey);
    applyProtocol(null);
    formProtocol = protocol();
    updateSecretHints();
    showPane("conn-form");
    $("cf-name").focus();
  }

  // One jump host row; ``original`` is the stored hop it shows (with its index), if any.
  function addHop(hop, originalIndex) {
    const row = $("hop-template").content.firstElementChild.cloneNode(true);
    const input = (key) => row.querySelector(`[data-key="${key}"]`);
    if (hop) {
      input("host").value = hop.host;
      input("port").value = hop.port ? String(hop.port) : "";
      input("username").value = hop.username;
      row.dataset.originalIndex = String(originalIndex);
    }
    row.hop = hop || null;
    for (const key of ["host", "port", "username"]) input(key).addEventListener("input", renumberHops);
    for (const key of ["password", "privateKey"]) {
      const clear = row.querySelector(`[data-clear="${key}"] input`);
      clear.addEventListener("change", () => { input(key).disabled = clear.checked; if (clear.checked) input(key).value = ""; });
    }
    row.querySelector('[data-action="remove"]').addEventListener("click", () => { row.remove(); renumberHops(); });
    row.querySelector('[data-action="up"]').addEventListener("click", () => {
      if (row.previousElementSibling) hops.insertBefore(row, row.previousElementSibling);
      renumberHops();
    });
    row.querySelector('[data-action="down"]').addEventListener("click", () => {
      if (row.nextElementSibling) hops.insertBefore(row.nextElementSibling, row);
      renumberHops();
    });
    hops.appendChild(row);
    renumberHops();
    return row;
  }

  // The API keeps an omitted hop secret only from the stored hop *at the same index* while it
  // and every hop before it still name the same user, host and port; otherwise the secret must
  // be typed again.
  function keepsSecrets(row, position) {
    return [...hops.children].slice(0, position + 1).every(unchangedHop);
  }

  function unchangedHop(row, position) {
    if (!row.hop || row.dataset.originalIndex !== String(position)) return false;
    const value = (key) => row.querySelector(`[data-key="${key}"]`).value.trim();
    return value("host") === row.hop.host && value("username") === row.hop.username &&
      (portValue(row.querySelector('[data-key="port"]')) || 22) === row.hop.port;
  }

  function renumberHops() {
    [...hops.children].forEach((row, position) => {
      row.querySelector("[data-row-error]").dataset.for = `jumpHosts[${position}]`;
      const kept = keepsSecrets(row, position);
      for (const key of ["password", "privateKey"]) {
        const stored = row.hop && (key === "password" ? row.hop.hasPassword : row.hop.hasPrivateKey);
        const hint = row.querySelector(`[data-hint="${key}"]`);
        hint.hidden = !stored;
        hint.textContent = kept
          ? "stored — leave blank to keep"
          : "stored, but the way to this hop changed — enter it again or it is dropped";
        row.querySelector(`[data-clear="${key}"]`).hidden = !(stored && kept);
      }
      row.querySelector('[data-action="up"]').disabled = position === 0;
      row.querySelector('[data-action="down"]').disabled = position === hops.children.length - 1;
    });
    updateSecretHints();
  }

  function addTunnel(tunnel) {
    const row = $("tunnel-template").content.firstElementChild.cloneNode(true);
    if (tunnel) {
      row.querySelector('[data-key="localPort"]').value = String(tunnel.localPort);
      row.querySelector('[data-key="remoteHost"]').value = tunnel.remoteHost;
      row.querySelector('[data-key="remotePort"]').value = String(tunnel.remotePort);
    }
    row.querySelector('[data-action="remove"]').addEventListener("click", () => { row.remove(); renumberTunnels(); });
    tunnels.appendChild(row);
    renumberTunnels();
  }

  function renumberTunnels() {
    [...tunnels.children].forEach((row, i) => { row.querySelector("[data-row-error]").dataset.for = `tunnels[${i}]`; });
  }

  // A port input as a number, null when blank, or the raw text (for the API to reject).
  function portValue(input) {
    const text = input.value.trim();
    if (!text) return null;
    return /^\d+$/.test(text) ? Number(text) : text;
  }

  function hopBodies(original) {
    return [...hops.children].map((row, position) => {
      const value = (key) => row.querySelector(`[data-key="${key}"]`).value;
      const hop = { host: value("host").trim(), username: value("username").trim() };
      const port = portValue(row.querySelector('[data-key="port"]'));
      if (port !== null) hop.port = port;
      const storedHere = original && original[position];
      const kept = keepsSecrets(row, position);
      for (const key of ["password", "privateKey"]) {
        const typed = value(key);
        const clear = row.querySelector(`[data-clear="${key}"] input`).checked;
        const storedFlag = key === "password" ? "hasPassword" : "hasPrivateKey";
        if (typed) hop[key] = typed;
        else if (clear) hop[key] = "";
        // Say plainly that a stored secret is dropped where it cannot be kept.
        else if (!kept && storedHere && storedHere[storedFlag]) hop[key] = "";
      }
      return hop;
    });
  }

  function tunnelBodies() {
    return [...tunnels.children].map((row) => ({
      localPort: portValue(row.querySelector('[data-key="localPort"]')),
      remoteHost: row.querySelector('[data-key="remoteHost"]').value.trim(),
      remotePort: portValue(row.querySelector('[data-key="remotePort"]')),
    }));
  }

  function canonical(value) {
    if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
    if (value && typeof value === "object") {
      return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
    }
    return JSON.stringify(value === undefined ? null : value);
  }

  const same = (a, b) => canonical(a) === canonical(b);

  // The request body for the form: everything for a create; for an edit, only what changed,
  // with credentials left out when left blank (the API keeps what it has).
  function formBody() {
    const original = state.editing;
    const proto = protocol();
    const keyProtocol = KEY_PROTOCOLS.includes(proto);
    const changedProtocol = original && original.protocol !== proto;
    const body = {
      name: $("cf-name").value.trim(),
      displayName: $("cf-display-name").value.trim(),
      protocol: proto,
      username: $("cf-username").value.trim(),
      tags: $("cf-tags").value.split(",").map((t) => t.trim()).filter(Boolean),
      recordingEnabled: $("cf-recording").checked,
      promptCredentials: $("cf-prompt").checked,
      groupId: $("cf-group").value || null,
    };
    if (proto === "web") Object.assign(body, { url: $("cf-url").value.trim(), host: "", port: null });
    else Object.assign(body, { host: $("cf-host").value.trim(), port: portValue($("cf-port")), url: "" });
    if ($("cf-shared")) body.shared = $("cf-shared").checked;
    if (proto === "rdp" || proto === "web") body.skipCertValidation = $("cf-skip-cert").checked;

    const extra = { ...((original && original.extraConfig) || {}) };
    for (const key of RDP_KEYS) delete extra[key];
    if (proto === "rdp") {
      const domain = $("cf-domain").value.trim();
      const resolution = $("cf-resolution").value.trim();
      if (domain) extra.domain = domain;
      if ($("cf-security").value) extra.security = $("cf-security").value;
      if (resolution) extra.resolution = resolution;
      if ($("cf-color-depth").value) extra.color_depth = Number($("cf-color-depth").value);
    }
    if (original || Object.keys(extra).length) body.extraConfig = extra;

    if (proto === "ssh") body.tunnels = tunnelBodies();
    else if (original && original.tunnels.length) body.tunnels = []; // the API refuses tunnels off SSH

    if (keyProtocol) body.jumpHosts = hopBodies(original && original.jumpHosts);
    else if (changedProtocol && original.jumpHosts.length) body.jumpHosts = [];

    const password = $("cf-password").value;
    if (password) body.password = password;
    else if ($("cf-password-clear").checked) body.password = "";
    const key = $("cf-private-key").value;
    if (keyProtocol && key) body.privateKey = key;
    else if (keyProtocol && $("cf-private-key-clear").checked) body.privateKey = "";
    else if (!keyProtocol && original && original.hasPrivateKey) body.privateKey = ""; // keys are SSH/SFTP only

    if (!original) {
      if (!body.tags.length) delete body.tags;
      if (!body.groupId) delete body.groupId;
      if (proto === "web") { delete body.host; delete body.port; } else { delete body.url; if (body.port === null) delete body.port; }
      if (body.tunnels && !body.tunnels.length) delete body.tunnels;
      if (body.jumpHosts && !body.jumpHosts.length) delete body.jumpHosts;
      return body;
    }
    const before = {
      name: original.name,
      displayName: original.displayName,
      protocol: original.protocol,
      username: original.username,
      tags: original.tags,
      recordingEnabled: original.recordingEnabled,
      promptCredentials: original.promptCredentials,
      groupId: original.groupId,
      url: original.url,
      host: original.host,
      port: original.protocol === "web" ? null : original.port,
      shared: original.shared,
      skipCertValidation: original.skipCertValidation,
      extraConfig: original.extraConfig,
      tunnels: original.tunnels,
      jumpHosts: original.jumpHosts.map((h) => ({ host: h.host, port: h.port, username: h.username })),
    };
    for (const field of Object.keys(before)) {
      if (!(field in body)) continue;
      if (field === "jumpHosts") {
        const plain = body.jumpHosts.map((h) => ({ host: h.host, port: h.port === undefined ? 22 : h.port, username: h.username }));
        const secrets = body.jumpHosts.some((h) => "password" in h || "privateKey" in h);
        if (!secrets && same(plain, before.jumpHosts)) delete body.jumpHosts;
      } else if (field === "port" && body.port === null && proto !== "web" && original.port === DEFAULT_PORTS[proto]) {
        delete body.port; // blank means the default port, which is what the connection has
      } else if (same(body[field], before[field])) {
        delete body[field];
      }
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const resolution = $("cf-resolution");
    if (protocol() === "rdp" && resolution.value && !resolution.checkValidity()) {
      showFormErrors(form, {
        message: "Check the marked fields.",
        fields: { resolution: ["Write the resolution as WIDTHxHEIGHT, like 1920x1080."] },
      });
      return;
    }
    const original = state.editing;
    const body = formBody();
    const save = $("conn-form-save");
    save.disabled = true;
    try {
      let id;
      if (original) {
        if (Object.keys(body).length) await api("PUT", `/api/connections/${encodeURIComponent(original.id)}`, body);
        id = original.id;
      } else {
        id = (await api("POST", "/api/connections", body)).id;
      }
      showError("");
      await refresh();
      await selectConnection(id);
    } catch (error) {
      showFormErrors(form, error);
    } finally {
      save.disabled = false;
    }
  });

  $("cf-protocol").addEventListener("change", () => {
    applyProtocol(formProtocol);
    formProtocol = protocol();
    updateSecretHints();
  });
  for (const id of ["cf-host", "cf-port", "cf-url", "cf-username", "cf-domain"]) $(id).addEventListener("input", updateSecretHints);
  for (const id of ["cf-security", "cf-skip-cert"]) $(id).addEventListener("change", updateSecretHints);
  for (const [box, input] of [["cf-password-clear", "cf-password"], ["cf-private-key-clear", "cf-private-key"]]) {
    $(box).addEventListener("change", () => { $(input).disabled = $(box).checked; if ($(box).checked) $(input).value = ""; });
  }
  $("cf-add-hop").addEventListener("click", () => addHop(null).querySelector('[data-key="host"]').focus());
  $("cf-add-tunnel").addEventListener("click", () => addTunnel(null));
  $("conn-form-cancel").addEventListener("click", () => {
    if (state.editing) renderDetail(state.editing);
    else if (state.selected && state.selected.kind === "folder") selectFolder(state.selected.id);
    else clearSelection();
  });

  // --- folder form ---------------------------------------------------------------------------

  const folderForm = $("folder-form");
  let editingFolder = null;

  function openFolderForm(folder, parentId) {
    editingFolder = folder;
    clearErrors(folderForm);
    folderForm.reset();
    $("folder-form-title").textContent = folder ? `Rename or move “${folder.name}”` : "New folder";
    $("folder-form-save").textContent = folder ? "Save folder" : "Create folder";
    // Offer every folder as a parent: moving under itself is refused by the API, with a message.
    folderOptions($("ff-parent"), { blank: "— top level —", includeAddressBook: false });
    $("ff-name").value = folder ? folder.name : "";
    $("ff-parent").value = folder ? folder.parentId || "" : parentId || "";
    showPane("folder-form");
    $("ff-name").focus();
  }

  folderForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(folderForm);
    const name = $("ff-name").value.trim();
    const parentId = $("ff-parent").value || null;
    try {
      let id;
      if (editingFolder) {
        const body = {};
        if (name !== editingFolder.name) body.name = name;
        if (parentId !== editingFolder.parentId) body.parentId = parentId;
        if (Object.keys(body).length) await api("PUT", `/api/connections/groups/${encodeURIComponent(editingFolder.id)}`, body);
        id = editingFolder.id;
      } else {
        id = (await api("POST", "/api/connections/groups", { name, parentId })).id;
      }
      if (parentId) state.collapsed.delete(parentId);
      showError("");
      await loadTree();
      selectFolder(id);
    } catch (error) {
      showFormErrors(folderForm, error);
    }
  });

  $("folder-form-cancel").addEventListener("click", () => {
    if (state.selected && state.selected.kind === "folder" && state.folders.has(state.selected.id)) selectFolder(state.selected.id);
    else clearSelection();
  });

  // --- sharing -------------------------------------------------------------------------------

  const shareDialog = $("share-dialog");
  const share = { connection: null, items: [], searchTimer: null, searchRequest: 0 };

  function shareLabel(s) {
    return s.shareType === "role" ? `role: ${s.targetName || s.targetId.replace(/^role_/, "")}` : s.targetName || s.targetId;
  }

  function renderShares() {
    const list = $("share-list");
    list.replaceChildren(...share.items.map((item) =>
      el("li", { dataset: { targetId: item.targetId } },
        el("span", {}, shareLabel(item)),
        button("Remove", "danger small", () => {
          share.items = share.items.filter((s) => s.targetId !== item.targetId);
          renderShares();
          searchUsers();
        }))));
    $("share-none").hidden = share.items.length > 0;
  }

  function renderUserResults(users) {
    const taken = new Set(share.items.map((s) => s.targetId));
    $("share-results").replaceChildren(...users.filter((u) => !taken.has(u.targetId)).map((u) =>
      el("li", { dataset: { targetId: u.targetId } },
        el("span", {}, u.name, el("span", { className: "muted" }, ` ${u.email}`)),
        button("Add", "small", () => {
          share.items.push({ shareType: "user", targetId: u.targetId, targetName: u.email });
          renderShares();
          renderUserResults(users);
        }))));
  }

  async function searchUsers() {
    const term = $("share-search").value.trim();
    const request = ++share.searchRequest;
    if (!term) { $("share-results").replaceChildren(); return; }
    try {
      const { users } = await api("GET", `/api/connections/share-targets?search=${encodeURIComponent(term)}`);
      if (request === share.searchRequest) renderUserResults(users);
    } catch (error) { shareError(error.message); }
  }

  function shareError(message) {
    $("share-error").textContent = message || "";
    $("share-error").hidden = !message;
  }

  async function openShare(detail) {
    const path = `/api/connections/${encodeURIComponent(detail.id)}`;
    const [{ shares }, targets] = await Promise.all([api("GET", `${path}/shares`), api("GET", "/api/connections/share-targets")]);
    share.connection = detail;
    share.items = shares.map((s) => ({ shareType: s.shareType, targetId: s.targetId, targetName: s.targetName }));
    $("share-name").textContent = detail.name;
    $("share-search").value = "";
    $("share-results").replaceChildren();
    const roles = targets.roles.map((r) => el("option", { value: r.targetId, dataset: { name: r.name } }, r.name));
    $("share-role").replaceChildren(...roles);
    shareError("");
    renderShares();
    shareDialog.showModal();
    $("share-search").focus();
  }

  $("share-search").addEventListener("input", () => {
    clearTimeout(share.searchTimer);
    share.searchTimer = setTimeout(searchUsers, 200);
  });
  $("share-search").addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  $("share-add-role").addEventListener("click", () => {
    const option = $("share-role").selectedOptions[0];
    if (!option || share.items.some((s) => s.targetId === option.value)) return;
    share.items.push({ shareType: "role", targetId: option.value, targetName: option.dataset.name });
    renderShares();
  });
  $("share-cancel").addEventListener("click", () => shareDialog.close());
  $("share-save").addEventListener("click", async () => {
    const id = share.connection.id;
    try {
      await api("PUT", `/api/connections/${encodeURIComponent(id)}/shares`, {
        shares: share.items.map((s) => ({ shareType: s.shareType, targetId: s.targetId })),
      });
      shareDialog.close();
      await selectConnection(id);
    } catch (error) { shareError(error.message); }
  });

  // --- import ----------------------------------------------------------------------------------

  const importDialog = $("import-dialog");

  function importStep(name, stepState) {
    importDialog.querySelector(`[data-step="${name}"]`).dataset.state = stepState;
  }

  function importProgress(fraction) {
    const percent = Math.round(fraction * 100);
    $("import-progress").value = percent;
    $("import-percent").textContent = `${percent}%`;
  }

  function importMessage(data) {
    // The first field error names the item ("connections[3].port: …"); the summary may not.
    const [first] = fieldErrors(data && data.fields);
    if (first && first[0] && first[0] !== "non_field_errors") {
      return first[1].startsWith(first[0].split(".")[0]) ? first[1] : `${first[0]}: ${first[1]}`;
    }
    return (data && data.error) || "The import failed.";
  }

  function finishImport(status, text) {
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: a proxy's error page */ }
    importStep("upload", "done");
    importStep("process", "done");
    importStep("result", status === 201 ? "done" : "failed");
    $("import-start").disabled = false;
    if (status === 201) {
      $("import-result").textContent = `Imported ${data.groupsCreated} folder(s) and ${data.connectionsCreated} connection(s).`;
      $("import-result").hidden = false;
      refresh().catch(report);
    } else {
      $("import-error").textContent = status ? importMessage(data) : "The upload failed: the server could not be reached.";
      $("import-error").hidden = false;
    }
  }

  // XMLHttpRequest rather than fetch: only it reports upload progress, which matters for big files.
  function startImport(file) {
    $("import-steps").hidden = false;
    $("import-result").hidden = true;
    $("import-error").hidden = true;
    $("import-start").disabled = true;
    importProgress(0);
    importStep("upload", "active");
    importStep("process", "pending");
    importStep("result", "pending");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/connections/import");
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.upload.addEventListener("progress", (event) => { if (event.lengthComputable) importProgress(event.loaded / event.total); });
    xhr.upload.addEventListener("load", () => {
      importProgress(1);
      importStep("upload", "done");
      importStep("process", "active");
    });
    xhr.addEventListener("load", () => finishImport(xhr.status, xhr.responseText));
    xhr.addEventListener("error", () => finishImport(0, ""));
    xhr.send(file);
  }

  if (importDialog) {
    $("open-import").addEventListener("click", () => {
      $("import-form").reset();
      $("import-steps").hidden = true;
      $("import-result").hidden = true;
      $("import-error").hidden = true;
      importDialog.showModal();
    });
    $("import-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const file = $("import-file").files[0];
      if (!file) {
        $("import-error").textContent = "Choose an export file first.";
        $("import-error").hidden = false;
        return;
      }
      startImport(file);
    });
    $("import-close").addEventListener("click", () => importDialog.close());
  }

  // --- toolbar and start -----------------------------------------------------------------------

  // New things go into the selected personal folder, if one is selected.
  function selectedPersonalFolder() {
    const folder = state.selected && state.selected.kind === "folder" && state.folders.get(state.selected.id);
    return folder && !isAddressBook(folder) ? folder.id : null;
  }

  if ($("new-connection")) {
    $("new-connection").addEventListener("click", () => openConnectionForm(null, selectedPersonalFolder()));
    $("new-folder").addEventListener("click", () => openFolderForm(null, selectedPersonalFolder()));
  }
  $("check-now").addEventListener("click", checkVisible);

  // Filter as the user types; only very big trees wait for a pause in typing.
  let filterTimer;
  $("conn-search").addEventListener("input", () => {
    clearTimeout(filterTimer);
    if (state.connections.size > 2000) filterTimer = setTimeout(renderTree, 150);
    else renderTree();
  });
  $("conn-tag").addEventListener("change", renderTree);
  $("conn-protocol").addEventListener("change", renderTree);

  refresh()
    .then(() => {
      const id = decodeURIComponent(location.hash.slice(1));
      if (state.connections.has(id)) selectConnection(id);
      else if (state.folders.has(id)) selectFolder(id);
    })
    .catch(report);
})();
