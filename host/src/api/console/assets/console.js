// Baton console: live pages and action forms. No framework and no build step: this
// file is served as it is, from inside the `baton` binary.
//
// Live: <main data-live="URL"> names a stream of the API's `change` events; when one
// arrives, the page's <main> is fetched again and swapped in, unless the person is
// typing in a form there (then a notice offers the refresh instead).
//
// Actions: <form data-api="METHOD /v1/..."> is sent as JSON to that API route with
// the session's CSRF token. A field named `a.b` becomes {"a": {"b": ...}}; a field
// with `data-json` holds JSON; the pressed button's name and value are a field too.
// The API's error (code, message, field, details) is shown in the form.
"use strict";
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  const main = document.getElementById("main");
  const flash = document.getElementById("flash");
  if (!main || !csrf) return;

  let editing = false;
  let pending = null;

  function say(text, kind) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = kind || "";
  }

  async function refresh() {
    pending = null;
    let response;
    try {
      response = await fetch(location.href, { headers: { "X-Baton-Fragment": "1" } });
    } catch {
      return; // offline for a moment: the next event tries again
    }
    if (response.redirected) {
      location.reload(); // the session ended: the sign-in page
      return;
    }
    if (!response.ok) return;
    main.innerHTML = await response.text();
    editing = false;
    main.dataset.refreshed = String(Date.now());
  }

  // Someone is typing in a form here: offer the changes rather than wipe their input.
  function offer() {
    say("This page has changed. ", "stale");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Show the changes";
    button.addEventListener("click", () => { say(""); refresh(); });
    flash.append(button);
  }

  function changed() {
    clearTimeout(pending);
    pending = setTimeout(() => (editing ? offer() : refresh()), 150);
  }

  const live = main.dataset.live;
  if (live && "EventSource" in window) {
    const events = new EventSource(live);
    events.addEventListener("change", changed);
    window.addEventListener("pagehide", () => events.close());
  }

  main.addEventListener("input", (e) => {
    if (e.target.closest("form[data-api]")) editing = true;
  });

  function set(body, path, value) {
    const keys = path.split(".");
    let node = body;
    for (const key of keys.slice(0, -1)) node = node[key] ??= {};
    node[keys[keys.length - 1]] = value;
  }

  function fieldName(el) {
    return el.labels?.[0]?.textContent.replace("*", "").trim() || el.name;
  }

  // The form's fields as the JSON body of its API request.
  function collect(form, submitter) {
    const body = {};
    let corrected = false;
    for (const el of form.elements) {
      if (!el.name || el.disabled || ["submit", "button", "fieldset"].includes(el.type)) continue;
      let value;
      if (el.type === "checkbox") {
        value = el.checked;
      } else if (el.value.trim() === "") {
        continue; // empty: not given
      } else if ("json" in el.dataset) {
        try {
          value = JSON.parse(el.value);
        } catch (err) {
          throw new Error(`${fieldName(el)}: not valid JSON (${err.message})`);
        }
      } else if (el.type === "number") {
        value = Number(el.value);
      } else {
        value = el.value;
      }
      if ("original" in el.dataset) {
        corrected ||= JSON.stringify(value) !== JSON.stringify(JSON.parse(el.dataset.original));
      }
      set(body, el.name, value);
    }
    // A review sent back unchanged is an acceptance, not a correction.
    if (form.querySelector("[data-original]") && !corrected) delete body.output;
    if (submitter?.name) set(body, submitter.name, submitter.value);
    return body;
  }

  function explain(error, status) {
    if (!error) return `The server answered HTTP ${status}.`;
    let text = error.message;
    if (error.field) text += ` (field: ${error.field})`;
    if (Array.isArray(error.details)) {
      const lines = error.details.map((d) => (typeof d === "string" ? d
        : [d.path || d.field || d.step, d.message].filter(Boolean).join(": ")));
      if (lines.length) text += "\n" + lines.join("\n");
    }
    return `${text} [${error.code}]`;
  }

  document.addEventListener("submit", async (e) => {
    const form = e.target.closest("form[data-api]");
    if (!form) return;
    e.preventDefault();
    const status = form.querySelector(".form-status");
    const [method, url] = form.dataset.api.split(" ");
    let body;
    try {
      body = collect(form, e.submitter);
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    status.textContent = "";
    form.setAttribute("aria-busy", "true");
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      form.removeAttribute("aria-busy");
      status.textContent = `The server could not be reached: ${err.message}`;
      return;
    }
    form.removeAttribute("aria-busy");
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      status.textContent = explain(answer?.error, response.status);
      return;
    }
    const label = e.submitter?.textContent.trim() || "Done";
    say(`${label}: done.`, "ok");
    editing = false;
    refresh();
  });
})();
