// Shared helpers for console pages that talk to the JSON API with the browser session.
"use strict";

window.pam = (function () {
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // Call the API; resolve with the parsed JSON body (or null), reject with the API's error text
  // (the Error also carries the HTTP ``status`` and the per-field ``fields`` map, when given).
  async function api(method, path, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    const response = await fetch(path, options);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      error.fields = (data && data.fields) || null;
      throw error;
    }
    return data;
  }

  function formatDate(value) {
    if (!value) return "—";
    return new Date(value).toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function button(label, className, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  function showError(message) {
    const box = document.getElementById("message");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  return { api, csrfToken, formatDate, cell, button, showError };
})();
