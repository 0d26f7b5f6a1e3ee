"""Build a Python connector into a Baton plugin component with componentize-py.

    python path/to/baton/sdk/python/build.py app -o dist/my-plugin.wasm
    python -m baton_sdk.build app -o dist/my-plugin.wasm     # if baton_sdk is importable

Run it in the plugin's directory with the Python of a virtualenv that has the pinned
componentize-py (`pip install -r path/to/baton/sdk/python/requirements.txt`). It runs
componentize-py with the contract's WIT (`wit/` of this Baton checkout), world
`connector`, and a Python path of: the app's directory, this SDK, then the
virtualenv's site-packages (so the plugin's own pure-Python dependencies are bundled).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

SDK_PYTHON = Path(__file__).resolve().parent.parent  # sdk/python
DEFAULT_WIT = SDK_PYTHON.parent.parent / "wit"  # the checkout's wit/

_RUN_COMPONENTIZE_PY = (
    "import sys; from componentize_py import script; "
    "sys.argv[0] = 'componentize-py'; sys.exit(script())"
)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build a Python Baton connector into a WebAssembly component.",
    )
    parser.add_argument("app", nargs="?", default="app",
                        help="the app module in the current directory (default `app`), "
                             "or the path of its .py file")
    parser.add_argument("-o", "--output",
                        help="the component to write, default dist/<directory name>.wasm "
                             "in the app's directory")
    parser.add_argument("--wit", default=os.environ.get("BATON_WIT", str(DEFAULT_WIT)),
                        help=f"the contract's WIT directory (default {DEFAULT_WIT}, "
                             "or $BATON_WIT)")
    parser.add_argument("-p", "--python-path", action="append", default=[],
                        help="another directory to bundle modules from (repeatable)")
    args = parser.parse_args(argv)

    if args.app.endswith(".py") or os.sep in args.app:
        # A path to the app's file: build from its directory.
        file = Path(args.app if args.app.endswith(".py") else args.app + ".py").resolve()
        app_dir, app = file.parent, file.stem
    else:
        app_dir, app = Path.cwd(), args.app
    module = app_dir / (app.replace(".", os.sep) + ".py")
    package = app_dir / app.replace(".", os.sep) / "__init__.py"
    if not module.exists() and not package.exists():
        parser.error(f"no module `{app}` in {app_dir} (expected {module})")
    wit = Path(args.wit).resolve()
    if not (wit / "plugin.wit").exists():
        parser.error(f"{wit} holds no plugin.wit; pass --wit PATH/TO/baton/wit")
    if args.output:
        output = Path(args.output).resolve()
    else:
        output = app_dir / "dist" / f"{app_dir.name}.wasm"
    output.parent.mkdir(parents=True, exist_ok=True)

    try:
        import componentize_py  # noqa: F401
    except ImportError:
        sys.exit(
            f"componentize-py is not installed for {sys.executable}; run\n"
            f"  {sys.executable} -m pip install -r {SDK_PYTHON / 'requirements.txt'}"
        )

    command = [sys.executable, "-c", _RUN_COMPONENTIZE_PY, "-d", str(wit), "-w", "connector",
               "componentize", app, "-o", str(output), "-p", str(app_dir),
               "-p", str(SDK_PYTHON)]
    for extra in args.python_path:
        command += ["-p", str(Path(extra).resolve())]
    # componentize-py appends the active virtualenv's site-packages itself; make it the
    # virtualenv this Python belongs to, even when that venv is not activated.
    env = dict(os.environ)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    started = time.monotonic()
    # The Rust backtrace of componentize-py's own code helps nobody writing a plugin.
    env["RUST_BACKTRACE"] = env["RUST_LIB_BACKTRACE"] = "0"
    result = subprocess.run(command, env=env, cwd=app_dir, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        hint = _hint(result.stdout + result.stderr, app)
        if hint:
            sys.stderr.write(f"\nhint: {hint}\n")
        sys.exit(f"build.py: componentize-py failed to build {app_dir / app}")
    size = output.stat().st_size
    try:
        shown = output.relative_to(Path.cwd())
    except ValueError:
        shown = output
    print(f"wrote {shown} ({size / 1_000_000:.1f} MB) in {time.monotonic() - started:.1f} s")


def _hint(output, app):
    if "has no attribute 'WitWorld'" in output:
        return (f"{app}.py must export the connector: end it with "
                "`WitWorld = connector.export()`")
    if "called trapping stub" in output:
        return (f"{app}.py calls log, config, feedback or http at its top level; "
                "componentize-py runs that code while building, where Baton is not "
                "there: call them inside an action")
    return None


if __name__ == "__main__":
    main()
