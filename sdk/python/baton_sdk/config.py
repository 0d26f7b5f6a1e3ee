"""Values the admin set for this plugin, and the secrets granted to it. Connectors only.

    from baton_sdk import config
    base = config.get("base_url", "https://erp.example.com")  # parsed JSON, or the default
    key = config.secret("api_key")        # None unless requested in `secrets` and granted

    base = config.require_str("base_url")     # Failure `invalid_config` if unset or blank
    key = config.require_secret("api_key")    # Failure `secret_not_granted` if not granted

Outside a component nothing is configured or granted.
"""

import json

from . import _wit
from ._types import Failure

__all__ = ["get", "secret", "require_str", "require_secret"]


def get(key, default=None):
    """The admin-set value for `key`, parsed from JSON (a value that is not valid JSON is
    returned as the string it is), or `default` if it is not set."""
    raw = _wit.config.get(key) if _wit.config is not None else None
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def secret(name):
    """The secret `name`, or None unless the plugin requested it and an admin granted it.
    The host redacts granted secret values from logs, outputs and failures; still, never
    return or log them."""
    if _wit.config is None:
        return None
    return _wit.config.secret(name)


def require_str(key):
    """The value for `key` as a non-empty, trimmed string, or a Failure `invalid_config`
    (not retryable, details `{"key": KEY}`) naming the key."""
    value = get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    why = (
        "is not set" if value is None
        else "is empty" if isinstance(value, str)
        else "must be a string"
    )
    raise Failure(
        "invalid_config",
        f"configuration value `{key}` {why}; an admin sets it with "
        f"`baton plugin grant PLUGIN --config-value {key}=VALUE`",
        details={"key": key},
    )


def require_secret(name, code="secret_not_granted"):
    """The secret `name`, or a Failure `code` (not retryable, details
    `{"secret": NAME}`) saying it is not granted."""
    value = secret(name)
    if value is None:
        raise Failure(
            code,
            f"secret `{name}` is not granted to this plugin; an admin grants it with "
            f"`baton plugin grant PLUGIN --secret {name}=VALUE`",
            details={"secret": name},
        )
    return value
