// Baton console: live pages and action forms. No framework and no build step: this
// file is served as it is, from inside the `baton` binary.
//
// Live: <main data-live="URL"> names a stream of the API's `change` events; when one
// arrives, the page's <main> is fetched again and swapped in, unless the person has
// started filling in a form there (then a notice offers the refresh instead). The
// stream's URL carries the commit the page was read at (`seen`), so a change made
// before the stream opened still arrives, as its first event.
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

  // Forms someone has typed in; a refresh would wipe what they typed.
  const dirty = new Set();
  const editing = () => [...dirty].some((form) => main.contains(form));
  // At most one refresh per interval, however busy the server is.
  const INTERVAL_MS = 400;
  let scheduled = false;
  let again = false;

  function say(text, kind) {
    flash.textContent = text;
    flash.className = kind || "";
  }

  function offer() {
    say("This page has changed. ", "stale");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Show the changes";
    button.addEventListener("click", () => { dirty.clear(); say(""); refresh(); });
    flash.append(button);
  }

  async function refresh() {
    let response;
    try {
      response = await fetch(location.href, { headers: { "X-Baton-Fragment": "1" } });
    } catch {
      return; // offline for a moment: the next change tries again
    }
    if (response.redirected) {
      location.reload(); // the session ended: the sign-in page
      return;
    }
    if (!response.ok) return;
    const html = await response.text();
    if (editing()) {
      offer(); // they started typing while the page was on its way
      return;
    }
    const focused = document.activeElement?.id;
    main.innerHTML = html;
    if (focused) document.getElementById(focused)?.focus();
    main.dataset.refreshed = String(Date.now());
  }

  function changed() {
    if (scheduled) {
      again = true;
      return;
    }
    scheduled = true;
    setTimeout(async () => {
      if (editing()) offer();
      else await refresh();
      scheduled = false;
      if (again) {
        again = false;
        changed();
      }
    }, INTERVAL_MS);
  }

  const live = main.dataset.live;
  if (live && "EventSource" in window) {
    const events = new EventSource(live);
    events.addEventListener("change", changed);
    // The browser reconnects by itself after a network error; a refused stream (the
    // session ended, the server restarted) is closed for good: reload to find out.
    events.addEventListener("error", () => {
      if (events.readyState === EventSource.CLOSED) refresh();
    });
    window.addEventListener("pagehide", () => events.close());
  }

  main.addEventListener("input", (e) => {
    const form = e.target.closest("form[data-api]");
    if (form) dirty.add(form);
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

  // One field's value, or undefined when it is not given.
  function valueOf(el) {
    const known = "original" in el.dataset;
    if (el.type === "checkbox") return el.checked || known ? el.checked : undefined;
    if (el.value.trim() === "") return known ? null : undefined; // emptied: no value
    if ("json" in el.dataset) {
      try {
        return JSON.parse(el.value);
      } catch (err) {
        throw new Error(`${fieldName(el)}: not valid JSON (${err.message})`);
      }
    }
    return el.type === "number" ? Number(el.value) : el.value;
  }

  // The form's fields as the JSON body of its API request. A review's output goes
  // back whole; the engine tells an acceptance from a correction.
  function collect(form, submitter) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || ["submit", "button", "fieldset"].includes(el.type)) continue;
      const value = valueOf(el);
      if (value !== undefined) set(body, el.name, value);
    }
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
    dirty.delete(form);
    // Another form someone is filling in keeps its text: they get the notice instead.
    if (editing()) offer();
    else refresh();
  });
})();
