// steadfast console: follows a run page's changes without reloading it.
// Vendored with the binary (no build step, nothing fetched from elsewhere).
// The element #live names the URL of its fresh content and how often to ask;
// the content is swapped only when it changed, and not while the tab is
// hidden. Actions need no script: each posts a form and confirms on a page.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var url = live.getAttribute("data-live-url");
  var every = parseInt(live.getAttribute("data-interval"), 10) || 1000;
  var last = null;
  var updates = 0;
  var busy = false;
  document.body.setAttribute("data-live", "on");

  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          throw new Error("log in again");
        }
        return response.text().then(function (text) {
          return { ok: response.ok, text: text };
        });
      })
      .then(function (answer) {
        if (!answer.ok) {
          live.setAttribute("data-live-error", answer.text.slice(0, 200));
          return;
        }
        live.removeAttribute("data-live-error");
        if (last === null) {
          last = live.innerHTML;
        }
        if (answer.text !== last) {
          last = answer.text;
          live.innerHTML = answer.text;
          updates += 1;
          document.body.setAttribute("data-live-updates", String(updates));
        }
      })
      .catch(function (error) {
        live.setAttribute("data-live-error", String(error));
      })
      .then(function () {
        busy = false;
      });
  }

  setInterval(tick, every);
})();
