"""baton_sdk: write Baton connectors in Python.

A Baton plugin is a WebAssembly component; componentize-py turns a Python module into
one. You declare the connector once, register each action as a plain function
`(input: dict, call: Call) -> dict` with its JSON Schemas, and export the class the
generated bindings expect::

    from baton_sdk import Connector, Failure, http, log, config

    connector = Connector(
        name="greeter", version="0.1.0", description="Greets people",
        hosts=["api.greetings.example"], secrets=["token"],
    )

    @connector.action(
        "greet", "Say hello to someone",
        input={"type": "object", "properties": {"name": {"type": "string"}},
               "required": ["name"]},
        output={"type": "object", "properties": {"greeting": {"type": "string"}},
                "required": ["greeting"]},
    )
    def greet(input, call):
        if not input["name"]:
            raise Failure("empty_name", "a greeting needs a name")
        return {"greeting": f"Hello, {input['name']}!"}

    WitWorld = connector.export()   # componentize-py looks for `WitWorld` in the app module

The SDK parses the input JSON, serialises the output, turns a raised `Failure` into
the contract's typed failure and ANY other exception into a `plugin_error` failure (an
exception escaping a component would trap it). Build with
`python path/to/baton/sdk/python/build.py app -o dist/greeter.wasm`.
"""

import json
import traceback

from . import _wit
from ._types import Call, Failure
from . import config, feedback, http, log

__all__ = ["Connector", "Failure", "Call", "config", "feedback", "http", "log"]


_ANY_OBJECT = {"type": "object"}


class _Action:
    def __init__(self, name, description, input, output, func):
        self.name = name
        self.description = description
        self.input = input
        self.output = output
        self.func = func


class Connector:
    """A connector: its metadata, the capabilities it requests, and its actions.

    `hosts` are the hosts it wants to reach over HTTP (`api.example.com`,
    `api.example.com:8443`, `*.example.com`, `*`); `secrets` the names it reads with
    `config.secret`. An admin grants a subset of both.
    """

    def __init__(self, name, version, description="", hosts=(), secrets=()):
        self.name = name
        self.version = version
        self.description = description
        self.hosts = list(hosts)
        self.secrets = list(secrets)
        self.actions = {}

    def action(self, name=None, description="", input=None, output=None):
        """Decorator registering `func(input: dict, call: Call) -> dict` as an action.

        `name` defaults to the function's name with `_` turned into `-`; `input` and
        `output` are JSON Schemas (dicts). The host checks input against `input` before
        the function runs and output against `output` after it returns, so the function
        can rely on the shape the schema promises.
        """
        if callable(name):  # bare @connector.action
            return self.action()(name)

        def register(func):
            action = name or func.__name__.replace("_", "-")
            if action in self.actions:
                raise ValueError(f"action `{action}` is registered twice")
            self.actions[action] = _Action(
                action,
                description or (func.__doc__ or "").strip().split("\n")[0],
                input if input is not None else _ANY_OBJECT,
                output if output is not None else _ANY_OBJECT,
                func,
            )
            return func

        return register

    # The two exports, in plain Python (also what unit tests call).

    def info(self):
        """`describe`'s answer as a dict."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "actions": [
                {
                    "name": a.name,
                    "description": a.description,
                    "input_schema": a.input,
                    "output_schema": a.output,
                }
                for a in self.actions.values()
            ],
            "hosts": list(self.hosts),
            "secrets": list(self.secrets),
        }

    def run(self, action, input, call=None):
        """Run `action` on `input` (JSON text or an already-parsed value) and return the
        output as JSON text; raises `Failure` for every problem, including unexpected
        exceptions (code `plugin_error`)."""
        call = call or Call()
        found = self.actions.get(action)
        if found is None:
            known = sorted(self.actions)
            raise Failure(
                "unknown_action",
                f"this plugin has no action `{action}`; it offers: {', '.join(known)}",
                details={"action": action, "known": known},
            )
        if isinstance(input, (str, bytes)):
            try:
                value = json.loads(input)
            except ValueError as e:
                raise Failure(
                    "invalid_input", f"invalid input for `{action}`: not JSON ({e})"
                ) from None
        else:
            value = input
        try:
            output = found.func(value, call)
        except Failure:
            raise
        except BaseException as e:  # noqa: BLE001 - anything escaping would trap
            raise _plugin_error(action, e) from None
        try:
            return json.dumps(output, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise Failure(
                "invalid_output",
                f"the output of `{action}` could not be serialised as JSON: {e}",
            ) from None

    def export(self):
        """The class componentize-py exports as the `connector` world:
        `WitWorld = connector.export()` at the top level of the app module."""
        connector = self

        class WitWorld:
            def describe(self):
                t = _wit.types
                return t.PluginInfo(
                    name=connector.name,
                    version=connector.version,
                    description=connector.description,
                    actions=[
                        t.Action(
                            name=a.name,
                            description=a.description,
                            input_schema=json.dumps(a.input),
                            output_schema=json.dumps(a.output),
                            outcomes=[],
                        )
                        for a in connector.actions.values()
                    ],
                    capabilities=t.Capabilities(
                        hosts=list(connector.hosts), secrets=list(connector.secrets)
                    ),
                )

            def invoke(self, ctx, action, input):
                try:
                    call = Call(ctx.run_id, ctx.step_id, ctx.attempt, ctx.idempotency_key)
                    return connector.run(action, input, call)
                except Failure as f:
                    failure = f
                except BaseException as e:  # noqa: BLE001 - a bug in the SDK itself
                    failure = _plugin_error(action, e)
                raise _wit.Err(failure.to_wit())

        return WitWorld


def _plugin_error(action, e):
    name = type(e).__name__
    text = str(e)
    message = f"{name}: {text}" if text else name
    tb = traceback.format_exception(type(e), e, e.__traceback__)
    trace = "".join(tb[-6:])[-4000:]
    try:
        log.error(f"`{action}` raised {message}")
    except BaseException:  # noqa: BLE001
        pass
    return Failure(
        "plugin_error",
        f"`{action}` failed: {message}",
        details={"exception": name, "traceback": trace},
    )
