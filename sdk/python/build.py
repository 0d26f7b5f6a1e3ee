"""Build a Python Baton connector: `python path/to/baton/sdk/python/build.py app -o dist/NAME.wasm`.

Run in the plugin's directory, with the Python of a virtualenv that has
`pip install -r path/to/baton/sdk/python/requirements.txt`. See baton_sdk/build.py.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the checkout clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from baton_sdk.build import main  # noqa: E402

if __name__ == "__main__":
    main()
