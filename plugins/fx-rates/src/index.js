// fx-rates: currency conversion and exchange rates from a Frankfurter-style API
// (https://api.frankfurter.app), as a Baton connector written in JavaScript.

import { connector, config, Failure, http, log } from 'baton-sdk';

const DEFAULT_BASE_URL = 'https://api.frankfurter.app';
const CURRENCY = /^[A-Z]{3}$/;
const SERVICE = 'the exchange-rate service';

const currency = (description) => ({ type: 'string', pattern: '^[A-Z]{3}$', description });

export const { describe, invoke } = connector({
  name: 'fx-rates',
  version: '0.1.0',
  description: 'Currency conversion and exchange rates (Frankfurter API)',
  // `*`: whichever host the admin grants, as `base_url` may point at any Frankfurter
  // instance (it is self-hostable); the public one is `api.frankfurter.app`. The host
  // refuses a host the plugin does not request before looking at grants.
  hosts: ['*'],
  secrets: ['api_key'],
  actions: {
    convert: {
      description: 'Convert an amount from one currency to another at the latest rate',
      input: {
        type: 'object',
        properties: {
          amount: { type: 'number', minimum: 0, description: 'The amount in `from`' },
          from: currency('ISO 4217 code of the source currency, e.g. EUR'),
          to: currency('ISO 4217 code of the target currency, e.g. USD'),
        },
        required: ['amount', 'from', 'to'],
        additionalProperties: false,
      },
      output: {
        type: 'object',
        properties: {
          amount: { type: 'number' },
          from: { type: 'string' },
          to: { type: 'string' },
          rate: { type: 'number' },
          converted: { type: 'number', description: '`amount` × `rate`, rounded to 2 decimals' },
          date: { type: 'string', description: 'The date of the rate, YYYY-MM-DD' },
        },
        required: ['amount', 'from', 'to', 'rate', 'converted', 'date'],
      },
      run: convert,
    },
    rates: {
      description: 'The latest exchange rates from a base currency',
      input: {
        type: 'object',
        properties: {
          base: currency('ISO 4217 code of the base currency, e.g. EUR'),
          symbols: {
            type: 'array',
            items: currency('ISO 4217 code'),
            description: 'The currencies to quote; all of them if omitted',
          },
        },
        required: ['base'],
        additionalProperties: false,
      },
      output: {
        type: 'object',
        properties: {
          base: { type: 'string' },
          date: { type: 'string' },
          rates: { type: 'object', additionalProperties: { type: 'number' } },
        },
        required: ['base', 'date', 'rates'],
      },
      run: rates,
    },
  },
});

async function convert(input) {
  const { amount, from, to } = input ?? {};
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
    throw Failure.invalidInput('`amount` must be a number >= 0');
  }
  checkCurrency('from', from);
  checkCurrency('to', to);
  if (from === to) {
    // Nothing to ask the service: no request, so no key needed either.
    return { amount, from, to, rate: 1, converted: round2(amount), date: today() };
  }
  const body = await latest({ from, to }, [from, to]);
  const rate = body.rates[to];
  if (typeof rate !== 'number' || !Number.isFinite(rate)) {
    throw new Failure('invalid_response', `${SERVICE} sent no rate for ${to}`,
      { details: { from, to, rates: body.rates } });
  }
  return { amount, from, to, rate, converted: round2(amount * rate), date: body.date };
}

async function rates(input) {
  const { base, symbols } = input ?? {};
  checkCurrency('base', base);
  if (symbols !== undefined && !Array.isArray(symbols)) {
    throw Failure.invalidInput('`symbols` must be an array of currency codes');
  }
  (symbols ?? []).forEach((s, i) => checkCurrency(`symbols[${i}]`, s));
  const to = symbols && symbols.length > 0 ? symbols.join(',') : undefined;
  const body = await latest({ from: base, to }, [base, ...(symbols ?? [])]);
  return { base: body.base ?? base, date: body.date, rates: body.rates };
}

/** GET {base_url}/latest?from=..[&to=..]: the parsed body, or the failure for the answer. */
async function latest({ from, to }, currencies) {
  const key = config.secret('api_key');
  if (key === undefined) {
    throw new Failure('not_configured',
      'secret `api_key` is not granted to fx-rates; an admin grants it with ' +
      '`baton plugin grant fx-rates --secret api_key=VALUE`', { details: { secret: 'api_key' } });
  }
  const baseUrl = config.get('base_url', DEFAULT_BASE_URL);
  if (typeof baseUrl !== 'string' || baseUrl.trim() === '') {
    throw new Failure('invalid_config', 'configuration value `base_url` must be a non-empty string',
      { details: { key: 'base_url' } });
  }
  // Built by hand: the codes are checked above, and `to` keeps its literal commas.
  const url = http.endpoint(baseUrl.trim(), `/latest?from=${from}${to ? `&to=${to}` : ''}`);
  log.info(`GET ${url}`);
  const body = await http.json(url, {
    bearer: key,
    headers: { accept: 'application/json' },
    service: SERVICE,
    failure: (response) => statusFailure(response, currencies),
  });
  if (!body || typeof body !== 'object' || !body.rates || typeof body.rates !== 'object'
      || Array.isArray(body.rates) || typeof body.date !== 'string') {
    throw new Failure('invalid_response',
      `${SERVICE} answered without the expected \`rates\` and \`date\``, { details: { body } });
  }
  return body;
}

/** The failure for a non-2xx answer; `undefined` leaves it to the SDK's default mapping. */
function statusFailure(response, currencies) {
  const { status } = response;
  const error = response.errorMessage();
  const details = { status, error };
  const upstream = error ? `: ${error}` : '';
  if (status === 404) {
    return new Failure('unknown_currency',
      `unknown currency: ${[...new Set(currencies)].join(' or ')} ` +
      `(${SERVICE} answered 404${upstream})`, { details: { ...details, currencies } });
  }
  if (status === 401 || status === 403) {
    return new Failure('unauthorized',
      `${SERVICE} rejected the API key (${status})${upstream}; check the \`api_key\` secret`,
      { details });
  }
  if (status === 429 || status >= 500) {
    return new Failure('upstream_unavailable', `${SERVICE} is unavailable (${status})${upstream}`,
      { retryable: true, details });
  }
  return undefined;
}

function checkCurrency(field, value) {
  if (typeof value !== 'string' || !CURRENCY.test(value)) {
    throw Failure.invalidInput(`\`${field}\` must be a currency code of 3 uppercase letters, e.g. EUR`);
  }
}

function round2(x) {
  return Math.round((x + Number.EPSILON) * 100) / 100;
}

function today() {
  return new Date().toISOString().slice(0, 10);
}
