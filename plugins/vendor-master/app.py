"""vendor-master: looks vendors up in the vendor master data service.

A Baton connector written in Python (see README.md). Build, in this directory:

    python ../../sdk/python/build.py app -o dist/vendor-master.wasm
"""

import json
from urllib.parse import quote, urlencode

from baton_sdk import Connector, Failure, config, http, log

DEFAULT_BASE_URL = "https://vendors.example.com/api"
SERVICE = "the vendor master"

connector = Connector(
    name="vendor-master",
    version="0.1.0",
    description="Looks vendors up in the vendor master data service",
    hosts=["*"],  # whichever host the admin grants: base_url decides
    secrets=["api_key"],
)

_STATUS = {
    "type": "string",
    "description": "The vendor's status in the vendor master, e.g. `active` or `blocked`.",
}
_VENDOR_SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2 code."},
        "status": _STATUS,
    },
    "required": ["id", "name", "country", "status"],
}


@connector.action(
    "lookup-vendor",
    "Fetch one vendor by id, with whether it can be paid and its masked IBAN",
    input={
        "type": "object",
        "properties": {
            "vendor_id": {"type": "string", "minLength": 1, "description": "e.g. V-100"},
        },
        "required": ["vendor_id"],
    },
    output={
        "type": "object",
        "properties": {
            **_VENDOR_SUMMARY["properties"],
            "payable": {
                "type": "boolean",
                "description": "Whether invoices from this vendor may be paid: "
                "status is `active`.",
            },
            "payment_terms_days": {"type": ["integer", "null"]},
            "iban_masked": {
                "type": ["string", "null"],
                "description": "The IBAN's first 4 and last 4 characters, the rest always "
                "shown as `**** **** ****` (so the length is not revealed), e.g. "
                "`DE89 **** **** **** 3000`; `****` for an IBAN of 8 characters or "
                "fewer; null if the vendor has no IBAN.",
            },
        },
        "required": [
            "id", "name", "country", "status", "payable", "payment_terms_days",
            "iban_masked",
        ],
    },
)
def lookup_vendor(input, call):
    vendor_id = input["vendor_id"].strip()
    if not vendor_id:
        raise Failure("invalid_input", "`vendor_id` must not be blank")
    vendor = _get_json(f"/vendors/{quote(vendor_id, safe='')}", vendor_id=vendor_id)
    if not isinstance(vendor, dict):
        raise _shape_error("a vendor object", vendor)
    try:
        status = vendor["status"]
        return {
            "id": vendor["id"],
            "name": vendor["name"],
            "country": vendor["country"],
            "status": status,
            "payable": status == "active",
            "payment_terms_days": vendor.get("payment_terms_days"),
            "iban_masked": mask_iban(vendor.get("iban")),
        }
    except KeyError as e:
        raise _shape_error(f"a vendor with `{e.args[0]}`", vendor) from None


@connector.action(
    "search-vendors",
    "Find vendors whose name matches a query",
    input={
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2,
                     "description": "A part of the vendor's name, e.g. acme"},
        },
        "required": ["name"],
    },
    output={
        "type": "object",
        "properties": {"vendors": {"type": "array", "items": _VENDOR_SUMMARY}},
        "required": ["vendors"],
    },
)
def search_vendors(input, call):
    answer = _get_json("/vendors", query={"name": input["name"]})
    vendors = answer.get("vendors") if isinstance(answer, dict) else None
    if not isinstance(vendors, list) or not all(isinstance(v, dict) for v in vendors):
        raise _shape_error('`{"vendors": [...]}`', answer)
    try:
        return {
            "vendors": [
                {k: v[k] for k in ("id", "name", "country", "status")} for v in vendors
            ]
        }
    except KeyError as e:
        raise _shape_error(f"vendors with `{e.args[0]}`", answer) from None


def mask_iban(iban):
    """`DE89370400440532013000` -> `DE89 **** **** **** 3000` (spaces in the input are
    ignored; 8 characters or fewer -> `****`; None stays None)."""
    if iban is None:
        return None
    compact = "".join(str(iban).split())
    if len(compact) <= 8:
        return "****"
    return f"{compact[:4]} **** **** **** {compact[-4:]}"


def _base_url():
    value = config.get("base_url", DEFAULT_BASE_URL)
    if not isinstance(value, str) or not value.strip().startswith(("http://", "https://")):
        raise Failure(
            "invalid_config",
            f"configuration value `base_url` must be an http(s) URL, e.g. "
            f"\"{DEFAULT_BASE_URL}\"; an admin sets it with "
            f"`baton plugin grant vendor-master --config-value base_url=URL`",
            details={"key": "base_url"},
        )
    return value.strip()


def _get_json(path, query=None, vendor_id=None):
    """GET `{base_url}{path}` with the API key; the parsed JSON of a 2xx answer, else
    the failure its status means."""
    key = config.secret("api_key")
    if key is None:
        raise Failure(
            "not_configured",
            "secret `api_key` is not granted to vendor-master; an admin grants it with "
            "`baton plugin grant vendor-master --secret api_key=VALUE`",
            details={"secret": "api_key"},
        )
    url = http.endpoint(_base_url(), path)
    if query:
        url += "?" + urlencode(query)
    log.info(f"GET {url}")
    # A host not granted raises `host_denied`; network trouble `unreachable` (retryable).
    response = http.get(url, headers={"X-Api-Key": key})
    status = response.status
    if 200 <= status < 300:
        try:
            return json.loads(response.body)
        except ValueError as e:
            raise Failure("invalid_response", f"{SERVICE} answered {status} with a body "
                          f"that is not JSON: {e}", details={"status": status}) from None
    error = response.error_message()  # the upstream's {"message": ...}, verbatim
    details = {"status": status, "error": error}
    if status == 404 and vendor_id is not None:
        raise Failure("vendor_not_found",
                      f"vendor `{vendor_id}` does not exist in {SERVICE}",
                      details=dict(details, vendor_id=vendor_id))
    if status in (401, 403):
        raise Failure("unauthorized",
                      f"{SERVICE} refused the API key ({status}): {error}",
                      details=details)
    if status == 429 or status >= 500:
        raise Failure("upstream_unavailable",
                      f"{SERVICE} is unavailable ({status}): {error}",
                      retryable=True, details=details)
    raise Failure("upstream_error", f"{SERVICE} answered {status}: {error}",
                  details=details)


def _shape_error(expected, got):
    text = repr(got)
    return Failure("invalid_response",
                   f"{SERVICE} answered JSON that is not {expected}: "
                   f"{text[:200] + '…' if len(text) > 200 else text}")


WitWorld = connector.export()
