// The Command Center's only script: live queue updates over server-sent events,
// expiry countdowns, and the batch selection count. Everything works without it
// except the live parts; decisions are ordinary form posts.
(function () {
  "use strict";

  function countdowns() {
    const now = Date.now();
    document.querySelectorAll(".countdown[data-expires-ms]").forEach(function (el) {
      const left = Math.max(0, Math.floor((Number(el.dataset.expiresMs) - now) / 1000));
      el.textContent = left > 0 ? Math.floor(left / 60) + "m " + (left % 60) + "s" : "expired";
      el.classList.toggle("bad", left < 60);
    });
  }

  function pickedCount() {
    const out = document.getElementById("picked");
    if (out) out.textContent = String(document.querySelectorAll("input.pick:checked").length);
  }

  // A person halfway through typing a reason must not lose it to a refresh.
  function busy(root) {
    return Array.from(root.querySelectorAll("input:not([type=hidden]):not([type=checkbox])")).some(function (i) {
      return i.value !== "" || i === document.activeElement;
    }) || root.querySelector("input.pick:checked") !== null;
  }

  function refresh(force) {
    const queue = document.getElementById("queue");
    const live = document.getElementById("live");
    if (!queue || !live) return;
    if (!force && busy(queue)) {
      document.getElementById("updates").hidden = false;
      return;
    }
    fetch(live.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.status === 401) {  // the session ended: go and log in again
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
          throw new Error("logged out");
        }
        if (!r.ok || r.redirected) throw new Error(String(r.status));
        return r.text();
      })
      .then(function (html) {
        queue.innerHTML = html;
        document.getElementById("updates").hidden = true;
        countdowns();
        pickedCount();
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () { /* the next event tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    setInterval(countdowns, 1000);
    document.addEventListener("change", function (ev) {
      if (ev.target.classList && ev.target.classList.contains("pick")) pickedCount();
    });
    const show = document.getElementById("show-updates");
    if (show) show.addEventListener("click", function () { refresh(true); });
    if (document.getElementById("live") && window.EventSource) {
      const events = new EventSource("/events");
      ["queue", "reviews", "breaker"].forEach(function (kind) {
        events.addEventListener(kind, function () { refresh(false); });
      });
      events.onopen = function () { document.body.dataset.live = "open"; };
    }
  });
})();
