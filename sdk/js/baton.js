// baton-sdk for JavaScript: write Baton connectors as WebAssembly components.
//
// A plugin module declares itself once and exports the two functions of the
// `connector` world (wit/plugin.wit, package baton:plugin@0.1.0):
//
//   import { connector, Failure, http, log, config } from 'baton-sdk';
//
//   export const { describe, invoke } = connector({
//     name: 'greeter', version: '0.1.0', description: 'Greets people',
//     hosts: [], secrets: [],
//     actions: {
//       greet: {
//         description: 'Say hello to someone',
//         input: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
//         output: { type: 'object', properties: { greeting: { type: 'string' } }, required: ['greeting'] },
//         run: async ({ name }, call) => ({ greeting: `Hello, ${name}!` }),
//       },
//     },
//   });
//
// `baton-build-js src/index.js -o dist/greeter.wasm` turns it into a component.
//
// The SDK parses the input JSON, serialises the output, and turns every exception
// into a typed failure: a thrown `Failure` as it is, anything else as `plugin_error`
// (an exception escaping `invoke` would otherwise trap the component).

import { log as wasiLog } from 'baton:plugin/log@0.1.0';
import { get as configGet, secret as configSecret } from 'baton:plugin/config@0.1.0';
import { corrections as feedbackCorrections } from 'baton:plugin/feedback@0.1.0';

// ---------------------------------------------------------------------------
// Failure

/**
 * A typed failure: what went wrong and whether another attempt can help.
 *
 *   throw new Failure('not_found', 'purchase order PO-9 does not exist');
 *   throw new Failure('erp_timeout', 'the ERP did not answer', { retryable: true, details: { po: 'PO-9' } });
 */
export class Failure extends Error {
  /**
   * @param {string} code stable machine-readable code, e.g. `not_found`
   * @param {string} message a sentence for the person who reads the run's timeline
   * @param {{retryable?: boolean, details?: any}} [options] `details`: any JSON value
   */
  constructor(code, message, { retryable = false, details } = {}) {
    super(message);
    this.name = 'Failure';
    this.code = String(code);
    this.retryable = Boolean(retryable);
    this.details = details;
  }

  /** Failure code `invalid_input` (not retryable). */
  static invalidInput(message, details) {
    return new Failure('invalid_input', message, { details });
  }

  toJSON() {
    const out = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

/** `error` (anything thrown) as a Failure: Failures as they are, the rest as `plugin_error`. */
export function toFailure(error) {
  if (error instanceof Failure) return error;
  // A plain `{ code, message }` object (the WIT record's shape) is taken as a failure too.
  if (error && typeof error === 'object' && typeof error.code === 'string'
      && typeof error.message === 'string' && !(error instanceof Error)) {
    return new Failure(error.code, error.message, {
      retryable: error.retryable === true,
      details: error.details,
    });
  }
  if (error instanceof Error) {
    const details = { error: String(error.name) };
    if (error.stack) details.stack = String(error.stack);
    return new Failure('plugin_error', `the plugin failed: ${error.name}: ${error.message}`, { details });
  }
  return new Failure('plugin_error', `the plugin failed: it threw ${safeString(error)}`,
    { details: { error: typeof error } });
}

/** The WIT `failure` record for `error` (never throws). */
function witFailure(error) {
  const f = toFailure(error);
  let details;
  if (f.details !== undefined) {
    try {
      details = JSON.stringify(f.details);
    } catch (e) {
      details = JSON.stringify(safeString(f.details));
    }
  }
  return {
    code: String(f.code),
    message: String(f.message),
    retryable: f.retryable === true,
    details,
  };
}

function safeString(value) {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch (e) {
    return String(value);
  }
}

// ---------------------------------------------------------------------------
// log

function emit(level, args) {
  const message = args.map((a) => (typeof a === 'string' ? a : safeString(a))).join(' ');
  try {
    wasiLog(level, message);
  } catch (e) {
    // Logging must never fail a call.
  }
}

/**
 * Structured logging; lines are captured per call and shown with the step. Arguments
 * are joined with spaces (non-strings as JSON). Use this rather than `console.log`.
 */
export const log = {
  trace: (...args) => emit('trace', args),
  debug: (...args) => emit('debug', args),
  info: (...args) => emit('info', args),
  warn: (...args) => emit('warn', args),
  error: (...args) => emit('error', args),
};

// ---------------------------------------------------------------------------
// config

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
}

/** Values the admin set for this plugin, and the secrets granted to it. */
export const config = {
  /**
   * The admin-set value for `key` (parsed JSON; text that is not JSON comes back as a
   * string), or `fallback` (default `undefined`) if it is not set.
   */
  get(key, fallback = undefined) {
    const raw = configGet(key);
    return raw === undefined || raw === null ? fallback : parseJson(raw);
  },

  /**
   * The value for `key` as a non-empty, trimmed string; otherwise throws a Failure
   * `invalid_config` naming the key.
   */
  requireString(key) {
    const value = config.get(key);
    let why;
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
    else if (typeof value === 'string') why = 'is empty';
    else if (value === undefined) why = 'is not set';
    else why = 'must be a string';
    throw new Failure('invalid_config',
      `configuration value \`${key}\` ${why}; an admin sets it with ` +
      `\`baton plugin grant PLUGIN --config-value ${key}=VALUE\``, { details: { key } });
  },

  /**
   * The secret `name` if the plugin requested it (`secrets` in `connector`) and the admin
   * granted it, else `undefined`. The host redacts secret values from logs, outputs and
   * failures; still, never return or log them.
   */
  secret(name) {
    const value = configSecret(name);
    return value === null ? undefined : value;
  },

  /** The secret `name`, or throws a Failure `secret_not_granted` naming it. */
  requireSecret(name) {
    const value = config.secret(name);
    if (value !== undefined) return value;
    throw new Failure('secret_not_granted',
      `secret \`${name}\` is not granted to this plugin; an admin grants it with ` +
      `\`baton plugin grant PLUGIN --secret ${name}=VALUE\``, { details: { secret: name } });
  },
};

// ---------------------------------------------------------------------------
// feedback

/** Past human corrections of this plugin's outputs, for few-shot learning. */
export const feedback = {
  /**
   * The most recent corrections for `action`, newest first, at most `limit`:
   * `[{ input, original, corrected, actor, createdAt }]`, the first three parsed from
   * JSON, `createdAt` in Unix milliseconds (a number).
   */
  corrections(action, limit = 5) {
    return feedbackCorrections(action, limit).map((c) => ({
      input: parseJson(c.input),
      original: parseJson(c.original),
      corrected: parseJson(c.corrected),
      actor: c.actor,
      createdAt: Number(c.createdAt),
    }));
  },
};

// ---------------------------------------------------------------------------
// http

/** The error a service explained in a body: `{"error": "..."}`, `{"error": {"message"}}`,
 * `{"message": "..."}`, `{"detail": "..."}`; else the text, trimmed, cut at 500 chars. */
function errorMessageOf(text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      for (const v of [body.error, body.error && body.error.message, body.message, body.detail]) {
        if (typeof v === 'string') return v;
      }
    }
  } catch (e) {
    // not JSON
  }
  const trimmed = String(text).trim();
  const chars = Array.from(trimmed);
  return chars.length > 500 ? chars.slice(0, 500).join('') + '…' : trimmed;
}

/** A response, body read to the end. */
export class Response {
  constructor(url, status, headers, text) {
    this.url = url;
    this.status = status;
    this.headers = headers; // a Headers object: response.headers.get('content-type')
    this.text = text;
  }

  /** Whether the status is 2xx. */
  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  /** The body parsed as JSON, or throws a Failure `invalid_response` naming `service`. */
  json(service = hostOf(this.url)) {
    try {
      return JSON.parse(this.text);
    } catch (e) {
      throw new Failure('invalid_response',
        `${service} answered with a body that is not JSON: ${e.message}`,
        { details: { status: this.status, body: errorMessageOf(this.text) } });
    }
  }

  /** The error message the service put in the body (see `errorMessageOf`). */
  errorMessage() {
    return errorMessageOf(this.text);
  }

  /**
   * The conventional failure for a non-2xx answer from `service` (a name for people,
   * default: the host): 401/403 `unauthorized`, 404 `not_found`, 408/429/5xx
   * `upstream_unavailable` (retryable), anything else `upstream_error`. The message has
   * the status and the service's own error message; details `{status, error}`.
   */
  failure(service = hostOf(this.url)) {
    const s = this.status;
    const retryable = s === 408 || s === 429 || s >= 500;
    const code = s === 401 || s === 403 ? 'unauthorized'
      : s === 404 ? 'not_found'
        : retryable ? 'upstream_unavailable' : 'upstream_error';
    const error = this.errorMessage();
    let message = `${service} answered ${s}`;
    if (error) message += `: ${error}`;
    if (code === 'unauthorized') message += ' (check the API key granted to this plugin)';
    return new Failure(code, message, { retryable, details: { status: s, error } });
  }
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch (e) {
    return String(url);
  }
}

function isPlainBody(body) {
  return body !== null && typeof body === 'object' && !(body instanceof ArrayBuffer)
    && !ArrayBuffer.isView(body) && !(typeof Blob !== 'undefined' && body instanceof Blob)
    && !(typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams)
    && !(typeof ReadableStream !== 'undefined' && body instanceof ReadableStream);
}

/**
 * Send a request over `fetch` (wasi:http) and read the whole response. Any status is a
 * response; only getting none throws: Failure `unreachable` (retryable) for a network
 * error or a host the admin did not grant, `invalid_request` for a bad URL.
 *
 * options: `method` (default GET, or POST when there is a body), `headers` (object),
 * `bearer` (token for `Authorization: Bearer`), `body` (string/bytes as is; an object or
 * array is sent as JSON with `content-type: application/json`), `query` (object of
 * parameters appended to the URL; `undefined` values are skipped).
 */
async function request(url, options = {}) {
  const { method, headers = {}, bearer, body, query } = options;
  let target;
  try {
    target = new URL(url);
  } catch (e) {
    throw new Failure('invalid_request', `invalid URL \`${url}\`: ${e.message}`);
  }
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null) target.searchParams.append(k, String(v));
    }
  }
  const h = new Headers();
  for (const [k, v] of Object.entries(headers)) h.set(k, String(v));
  if (bearer !== undefined) h.set('authorization', `Bearer ${bearer}`);
  let payload = body;
  if (isPlainBody(body)) {
    payload = JSON.stringify(body);
    if (!h.has('content-type')) h.set('content-type', 'application/json');
  }
  const verb = (method || (payload === undefined ? 'GET' : 'POST')).toUpperCase();
  const href = target.href;
  let response;
  let text;
  try {
    response = await fetch(href, { method: verb, headers: h, body: payload });
    text = await response.text();
  } catch (e) {
    const host = target.host;
    throw new Failure('unreachable',
      `could not reach ${host}: ${e && e.message ? e.message : safeString(e)} ` +
      `(is \`${host}\` granted to this plugin? The plugin must request it and an admin must grant it)`,
      { retryable: true, details: { host } });
  }
  return new Response(href, response.status, response.headers, text);
}

/**
 * `request`, then the body as JSON. A non-2xx answer throws `options.failure(response)`
 * if given and it returns a Failure, else `response.failure(options.service)`; a body
 * that is not JSON throws `invalid_response`. An empty 2xx body gives `null`.
 */
async function json(url, options = {}) {
  const response = await request(url, options);
  if (!response.ok) {
    const custom = options.failure ? options.failure(response) : undefined;
    throw custom || response.failure(options.service);
  }
  if (response.text.trim() === '') return null;
  return response.json(options.service);
}

/** `base` (with or without a trailing `/`) joined with `path` (starting with `/`). */
function endpoint(base, path) {
  return String(base).replace(/\/+$/, '') + path;
}

/** A small HTTP client over `fetch`; connectors only. */
export const http = { request, json, endpoint };

// ---------------------------------------------------------------------------
// connector

const NAME = /^[a-z0-9-]+$/;

// A schema given as an object is serialised; as a string, it is taken as JSON text.
function schemaText(schema) {
  const s = schema === undefined ? {} : schema;
  return typeof s === 'string' ? s : JSON.stringify(s);
}

/**
 * Declare a connector; returns `{ describe, invoke }` to export:
 *
 *   export const { describe, invoke } = connector({ name, version, description, hosts,
 *     secrets, actions: { 'action-name': { description, input, output, run } } });
 *
 * `input`/`output` are JSON Schemas (objects) the host checks input and output against;
 * `run(input, call)` gets the parsed input and `call` = `{ action, runId, stepId,
 * attempt, idempotencyKey }`, and returns (or resolves to) the output value.
 */
export function connector(spec) {
  const { name, version, description = '', hosts = [], secrets = [], actions = {} } = spec;
  if (!NAME.test(String(name))) throw new Error(`connector name \`${name}\` must match [a-z0-9-]+`);
  const names = Object.keys(actions);
  for (const a of names) {
    if (typeof actions[a].run !== 'function') throw new Error(`action \`${a}\` has no run function`);
  }
  const info = {
    name: String(name),
    version: String(version),
    description: String(description),
    actions: names.map((a) => ({
      name: a,
      description: String(actions[a].description || ''),
      inputSchema: schemaText(actions[a].input),
      outputSchema: schemaText(actions[a].output),
      outcomes: [],
    })),
    capabilities: { hosts: hosts.map(String), secrets: secrets.map(String) },
  };

  function describe() {
    return info;
  }

  async function invoke(ctx, action, input) {
    try {
      const def = Object.prototype.hasOwnProperty.call(actions, action) ? actions[action] : undefined;
      if (!def) {
        throw new Failure('unknown_action',
          `${name} has no action \`${action}\`; it has: ${names.join(', ')}`,
          { details: { action, actions: names } });
      }
      let value;
      try {
        value = JSON.parse(input);
      } catch (e) {
        throw Failure.invalidInput(`the input is not valid JSON: ${e.message}`);
      }
      const call = {
        action,
        runId: ctx.runId,
        stepId: ctx.stepId,
        attempt: ctx.attempt,
        idempotencyKey: ctx.idempotencyKey,
      };
      const output = await def.run(value, call);
      const text = JSON.stringify(output === undefined ? null : output);
      return text;
    } catch (error) {
      // Anything but a `failure` record escaping `invoke` traps the component.
      throw witFailure(error);
    }
  }

  return { describe, invoke };
}
