// Deciding with a passkey, and registering one. Loaded for principals only.
//
// For a principal with a passkey (<body data-passkey="1">), every decision form
// (approve, reject, batch approve, breaker reset, Governor clear, venue acknowledgement, release from quarantine) takes two steps:
// POST /api/decisions/prepare with the form's fields (the server runs every check
// and builds the exact decisions), ask the passkey over the options it answers,
// then post the form as usual with the kept decision's id and the passkey's answer.
// The factory verifies that answer again before it counts anything.
(function () {
  "use strict";

  const ACTIONS = [
    [/^\/approvals\/batch$/, function (fd) {
      return { action: "batch", directive_ids: fd.getAll("directive_id"), confirm_count: Number(fd.get("confirm_count")) };
    }],
    [/^\/approvals\/([A-Za-z0-9_-]{1,64})\/approve$/, function (fd, m) {
      return { action: "approve", directive_id: m[1], confirm: fd.get("confirm") || null };
    }],
    [/^\/approvals\/([A-Za-z0-9_-]{1,64})\/reject$/, function (fd, m) {
      return { action: "reject", directive_id: m[1], reason: fd.get("reason") || "" };
    }],
    [/^\/breaker\/reset$/, function (fd) {
      return { action: "reset", password: fd.get("password") || "", reason: fd.get("reason") || "" };
    }],
    [/^\/governor\/clear$/, function (fd) {
      return { action: "clear", reason: fd.get("reason") || "" };
    }],
    [/^\/venues\/ack$/, function (fd) {
      return { action: "venue_ack", venue: fd.get("venue") || "", review: Number(fd.get("review")), reason: fd.get("note") || "" };
    }],
    [/^\/quarantine\/release$/, function (fd) {
      return { action: "release", news_id: fd.get("news_id") || "", reason: fd.get("reason") || "" };
    }],
  ];

  function csrf() {
    return document.body.dataset.csrf || "";
  }

  function say(form, text) {
    let box = form.querySelector(".passkey-problem");
    if (!box) {
      box = document.createElement("p");
      box.className = "banner bad passkey-problem";
      box.setAttribute("role", "alert");
      form.prepend(box);
    }
    box.textContent = text;
  }

  async function postJSON(url, body) {
    const r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new Error((data && data.detail) ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : "HTTP " + r.status);
    return data;
  }

  function hidden(form, name, value) {
    let input = form.querySelector("input[type=hidden][name='" + name + "']");
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    input.value = value;
  }

  async function decide(form, request) {
    const button = form.querySelector("button[type=submit], button:not([type])");
    if (button) button.disabled = true;
    try {
      const prepared = await postJSON("/api/decisions/prepare", request);
      const answer = await window.deskgatePasskey.assert(prepared.options);
      hidden(form, "prepared_id", prepared.prepared_id);
      hidden(form, "passkey", JSON.stringify(answer));
      form.dataset.passkeyDone = "1";
      form.submit();
    } catch (err) {
      if (button) button.disabled = false;
      say(form, "Not sent: " + (err && err.message ? err.message : String(err)));
    }
  }

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || document.body.dataset.passkey !== "1" || form.dataset.passkeyDone === "1") return;
    const path = new URL(form.action, window.location.href).pathname;
    for (const [pattern, build] of ACTIONS) {
      const m = path.match(pattern);
      if (m) {
        ev.preventDefault();
        decide(form, build(new FormData(form), m));
        return;
      }
    }
  }, true);

  // Registering a passkey: password again; an existing passkey confirms a new one.
  async function register(form) {
    const fd = new FormData(form);
    const out = document.getElementById("passkey-status");
    try {
      const begun = await postJSON("/api/passkeys/register/begin", { password: fd.get("password") || "", label: fd.get("label") || "" });
      let confirmation = null;
      if (begun.confirm_options) confirmation = await window.deskgatePasskey.assert(begun.confirm_options);
      const credential = await window.deskgatePasskey.register(begun.options);
      const done = await postJSON("/api/passkeys/register/finish", {
        registration_id: begun.registration_id, credential: credential, confirmation: confirmation,
      });
      if (out) out.textContent = "Passkey registered (" + (done.label || "unnamed") + "). Your decisions now need it.";
      window.setTimeout(function () { window.location.reload(); }, 600);
    } catch (err) {
      if (out) out.textContent = "Not registered: " + (err && err.message ? err.message : String(err));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("passkey-register");
    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        register(form);
      });
    }
  });
})();
