"""Access to the bindings componentize-py generates (`wit_world`), if there are any.

Inside a component the modules exist; in a plain Python interpreter (unit tests) they do
not, and every helper degrades gracefully: `log` writes to stderr, `config` and
`feedback` return nothing, and `http` fails with an `unreachable` failure.
The rule world imports only `log`, so there `config`, `feedback` and `http` are absent too.
"""


def _optional(name):
    try:
        module = __import__("wit_world.imports." + name, fromlist=[name])
    except ImportError:
        return None
    return module


# Imported at module load so that componentize-py's pre-initialisation snapshot already
# holds them; a call then pays for nothing but the call.
types = _optional("baton_plugin_types")
log = _optional("log")
config = _optional("config")
feedback = _optional("feedback")
outgoing_handler = _optional("outgoing_handler")
http_types = _optional("wasi_http_types")
streams = _optional("streams")

try:
    from componentize_py_types import Err, Ok
except ImportError:  # natively
    Err = Ok = None

in_component = types is not None and Err is not None
