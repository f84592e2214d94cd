// A share link's landing page (/client/<id>/join#key=…): the key lives in the URL's fragment,
// which browsers never send, so no server or proxy log holds it. Keep it in this tab while the
// user signs in, then post it (sessions/views.py join) and let the server go on to the terminal.
"use strict";

(function () {
  const form = document.getElementById("join-form");
  const message = document.getElementById("join-message");
  const stash = `pam.share.${form.dataset.session}`;

  const fromLink = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromLink) {
    sessionStorage.setItem(stash, fromLink);
    history.replaceState(null, "", location.pathname); // out of the address bar and history
  }
  const key = sessionStorage.getItem(stash);

  if (form.dataset.failed === "true") {
    sessionStorage.removeItem(stash);
    message.textContent = "";
  } else if (!key) {
    message.textContent = "This link has no share key: copy the whole link the session's owner sent you.";
  } else if (form.dataset.login) {
    message.textContent = "Sign in to open the session.";
    location.assign(form.dataset.login);
  } else {
    sessionStorage.removeItem(stash);
    document.getElementById("join-key").value = key;
    form.submit();
  }
})();
