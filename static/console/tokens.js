// My tokens page: list, create (plaintext shown once) and revoke personal tokens via /api/me/tokens.
"use strict";

(function () {
  const { api, formatDate, cell, button, showError } = window.pam;
  const tbody = document.querySelector("#token-table tbody");

  async function load() {
    const tokens = await api("GET", "/api/me/tokens");
    tbody.replaceChildren();
    for (const token of tokens) {
      const row = document.createElement("tr");
      row.dataset.tokenId = token.id;
      cell(row, token.name);
      cell(row, document.createElement("code")).firstChild.textContent = token.hint + "…";
      cell(row, token.max_role || "—");
      cell(row, formatDate(token.expires_at));
      cell(row, formatDate(token.created_at));
      cell(row, formatDate(token.last_used_at));
      if (window.PAM_CAN_MANAGE_TOKENS) {
        cell(row, button("Revoke", "danger", async () => {
          if (!confirm(`Revoke token "${token.name}"? Scripts using it stop working at once.`)) return;
          try { await api("DELETE", `/api/me/tokens/${token.id}`); showError(""); await load(); }
          catch (error) { showError(error.message); }
        }));
      }
      tbody.appendChild(row);
    }
    document.getElementById("token-empty").hidden = tokens.length > 0;
  }

  const form = document.getElementById("token-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = { name: data.get("name") };
      if (data.get("max_role")) body.max_role = data.get("max_role");
      if (data.get("expires_at")) body.expires_at = new Date(data.get("expires_at")).toISOString();
      try {
        const created = await api("POST", "/api/me/tokens", body);
        document.getElementById("token-value").textContent = created.token;
        document.getElementById("token-created").hidden = false;
        form.reset();
        showError("");
        await load();
      } catch (error) {
        showError(error.message);
      }
    });
  }

  load().catch((error) => showError(error.message));
})();
