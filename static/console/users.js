// Users page: list users and change role, disable/enable, force logout or delete via /api/users.
"use strict";

(function () {
  const { api, formatDate, cell, button, showError } = window.pam;
  const tbody = document.querySelector("#user-table tbody");
  const search = document.getElementById("user-search");
  const roleOptions = document.getElementById("role-options");

  async function act(call) {
    try { await call(); showError(""); await load(); }
    catch (error) { showError(error.message); }
  }

  function roleSelect(user) {
    const select = document.createElement("select");
    select.appendChild(roleOptions.content.cloneNode(true));
    select.value = user.role;
    select.setAttribute("aria-label", `Role of ${user.email}`);
    select.addEventListener("change", () =>
      act(() => api("PUT", `/api/users/${encodeURIComponent(user.email)}/role`, { role: select.value })));
    return select;
  }

  async function load() {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(search)) if (value) params.set(key, value);
    const users = await api("GET", `/api/users?${params}`);
    tbody.replaceChildren();
    for (const user of users) {
      const row = document.createElement("tr");
      row.dataset.email = user.email;
      const path = `/api/users/${encodeURIComponent(user.email)}`;
      cell(row, `${user.name} (${user.username})`);
      cell(row, user.email);
      cell(row, roleSelect(user));
      cell(row, user.disabled ? "disabled" : "active");
      cell(row, formatDate(user.last_login));
      const actions = document.createElement("div");
      actions.className = "actions";
      actions.append(
        user.disabled
          ? button("Enable", "", () => act(() => api("POST", `${path}/enable`)))
          : button("Disable", "danger", () => act(() => api("POST", `${path}/disable`))),
        button("Sign out everywhere", "", () => act(() => api("DELETE", `${path}/sessions`))),
        button("Delete", "danger", () => {
          if (confirm(`Delete ${user.email}? Their keys and tokens go with them.`)) act(() => api("DELETE", path));
        }),
      );
      cell(row, actions);
      tbody.appendChild(row);
    }
  }

  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load().catch((e) => showError(e.message)), 250); });
  search.addEventListener("submit", (event) => { event.preventDefault(); load().catch((e) => showError(e.message)); });
  load().catch((error) => showError(error.message));
})();
