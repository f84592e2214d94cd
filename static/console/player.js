// Playback page: asciinema-player on the recording (fetched from the API, which audits it), the
// typed commands beside it as markers (clicking one seeks there), a speed choice, and the start
// at ?t= (a search hit). Text reaches the DOM only through textContent.
"use strict";

(function () {
  const PAGE = JSON.parse(document.getElementById("player-page").textContent);
  const container = document.getElementById("player");
  const list = document.getElementById("command-list");
  const speed = document.getElementById("player-speed");
  const markers = PAGE.commands.map((command) => [command.at, command.text]);

  function clock(seconds) {
    const whole = Math.floor(seconds);
    return `${String(Math.floor(whole / 60)).padStart(2, "0")}:${String(whole % 60).padStart(2, "0")}`;
  }

  // No idle time limit: the timeline stays the recording's own, so a search hit's second and the
  // commands' are the player's.
  function create(startAt, rate) {
    const made = AsciinemaPlayer.create({ url: PAGE.url, fetchOpts: { credentials: "same-origin" } }, container, {
      speed: rate, markers, preload: true, fit: "width", terminalFontSize: "small",
    });
    if (startAt > 0) made.addEventListener("ready", () => made.seek(startAt));
    return made;
  }

  let player = create(PAGE.startAt, 1);
  window.pam.player = player;

  speed.addEventListener("change", () => {
    // The speed is fixed when the player is made: make it again where it was.
    const at = player.getCurrentTime();
    player.dispose();
    player = create(at, Number(speed.value));
    window.pam.player = player;
  });

  for (const command of PAGE.commands) {
    const item = document.createElement("li");
    const link = document.createElement("button");
    link.type = "button";
    link.className = "link-button command";
    link.dataset.at = command.at;
    const time = document.createElement("span");
    time.className = "hit-time";
    time.textContent = clock(command.at);
    const text = document.createElement("code");
    text.textContent = command.text;
    link.append(time, text);
    link.addEventListener("click", () => player.seek(command.at));
    item.append(link);
    list.append(item);
  }
  document.getElementById("no-commands").hidden = PAGE.commands.length > 0;
})();
