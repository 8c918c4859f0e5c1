// The Command Center's only script: live queue updates over server-sent events,
// expiry countdowns, the batch selection count, and sorting and filtering the
// queue table in place (so a batch selection survives). Everything works without
// it except the live parts: decisions are ordinary form posts, and the table's
// header links and filter form sort and filter on the server (web/queue_table.py).
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // Columns sorted as numbers; the rest as text. Ties keep the oldest first.
  const NUMERIC = ["notional", "explicit", "confidence", "position", "expires", "staged"];
  const FIRST_DESC = ["notional", "confidence", "position", "explicit"];
  const view = { sort: "staged", dir: "asc", q: "", side: "", kind: "" };

  function duration(left) {
    if (left >= 86400) return Math.floor(left / 86400) + "d " + Math.floor((left % 86400) / 3600) + "h";
    if (left >= 3600) return Math.floor(left / 3600) + "h " + String(Math.floor((left % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(left / 60) + "m " + String(left % 60).padStart(2, "0") + "s";
  }

  function countdowns() {
    const now = Date.now();
    document.querySelectorAll(".countdown[data-expires-ms]").forEach(function (el) {
      const left = Math.max(0, Math.floor((Number(el.dataset.expiresMs) - now) / 1000));
      el.textContent = left > 0 ? duration(left) : "expired";
      el.classList.toggle("bad", left < 60);
    });
  }

  function pickedCount() {
    const out = document.getElementById("picked");
    if (out) out.textContent = String(document.querySelectorAll("input.pick:checked:not(:disabled)").length);
  }

  // -- the queue table --------------------------------------------------------------------

  function readView() {
    const params = new URLSearchParams(window.location.search);
    Object.keys(view).forEach(function (k) { if (params.get(k)) view[k] = params.get(k); });
  }

  function writeView() {
    const params = new URLSearchParams();
    Object.keys(view).forEach(function (k) {
      if (view[k] && !(k === "sort" && view[k] === "staged") && !(k === "dir" && view[k] === "asc")) params.set(k, view[k]);
    });
    const query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
    const form = document.getElementById("queue-filter");
    if (form) {
      form.elements.sort.value = view.sort;
      form.elements.dir.value = view.dir;
    }
  }

  function matches(row) {
    const q = view.q.trim().toLowerCase();
    return (!q || row.dataset.text.indexOf(q) >= 0) && (!view.side || row.dataset.side === view.side) &&
      (!view.kind || row.dataset.kind === view.kind);
  }

  function compare(a, b) {
    const key = view.sort;
    const x = a.dataset[key], y = b.dataset[key];
    const order = NUMERIC.indexOf(key) >= 0 ? Number(x) - Number(y) : x.localeCompare(y);
    return (view.dir === "desc" ? -order : order) || Number(a.dataset.staged) - Number(b.dataset.staged);
  }

  // Sort and filter the rows there are; a filtered-out row's box is disabled, so a batch only holds what is shown.
  function applyView() {
    const table = document.getElementById("queue-table");
    if (!table) return;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).sort(compare);
    let shown = 0;
    rows.forEach(function (row) {
      body.appendChild(row);
      const ok = matches(row);
      row.hidden = !ok;
      const pick = row.querySelector("input.pick");
      if (pick) pick.disabled = !ok;
      if (ok) shown += 1;
    });
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.setAttribute("aria-sort", th.dataset.sort !== view.sort ? "none" : view.dir === "desc" ? "descending" : "ascending");
    });
    const count = document.getElementById("shown-count");
    if (count) count.textContent = shown === rows.length ? "" : "showing " + shown;
    const none = document.getElementById("none-shown");
    if (none) none.hidden = shown > 0;
    syncPicks();
  }

  function syncPicks() {
    const all = document.getElementById("pick-all");
    if (all) {
      const boxes = Array.from(document.querySelectorAll("#queue-table input.pick:not(:disabled)"));
      all.checked = boxes.length > 0 && boxes.every(function (b) { return b.checked; });
    }
    pickedCount();
  }

  function sortBy(key) {
    if (view.sort === key) view.dir = view.dir === "asc" ? "desc" : "asc";
    else { view.sort = key; view.dir = FIRST_DESC.indexOf(key) >= 0 ? "desc" : "asc"; }
    writeView();
    applyView();
  }

  // The server left out rows that did not match the filter it was given: a wider filter needs them back.
  function filterChanged() {
    const form = document.getElementById("queue-filter");
    view.q = form.elements.q.value;
    view.side = form.elements.side.value;
    view.kind = form.elements.kind.value;
    writeView();
    const table = document.getElementById("queue-table");
    if (table && table.dataset.filtered === "1") refresh(true);
    else applyView();
  }

  // -- live updates -------------------------------------------------------------------------

  // A person halfway through typing a reason or choosing a batch must not lose it to a refresh.
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
    // Every row, sorted by the server; this script filters and sorts them as the person chose.
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
        applyView();
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () { /* the next event tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    readView();
    countdowns();
    applyView();
    setInterval(countdowns, 1000);
    document.addEventListener("change", function (ev) {
      const t = ev.target;
      if (!t.classList) return;
      if (t.id === "pick-all") {
        document.querySelectorAll("#queue-table input.pick:not(:disabled)").forEach(function (b) { b.checked = t.checked; });
        pickedCount();
      } else if (t.classList.contains("pick")) {
        syncPicks();
      } else if (t.classList.contains("filter") && t.tagName === "SELECT") {
        filterChanged();
      }
    });
    document.addEventListener("input", function (ev) {
      if (ev.target.id === "filter-q") filterChanged();
    });
    document.addEventListener("click", function (ev) {
      const link = ev.target.closest && ev.target.closest("#queue-table th[data-sort] a");
      if (!link) return;
      ev.preventDefault();
      sortBy(link.parentElement.dataset.sort);
    });
    const filter = document.getElementById("queue-filter");
    if (filter) filter.addEventListener("submit", function (ev) { ev.preventDefault(); filterChanged(); });
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
