"""Past human corrections of this plugin's outputs, for few-shot learning. Connectors only.

    from baton_sdk import feedback
    for c in feedback.corrections("extract-invoice", 5):
        ...  # c.input produced c.original; a person said it should have been c.corrected

Outside a component there are none.
"""

import json

from . import _wit

__all__ = ["Correction", "corrections"]


class Correction:
    """One correction: `input`, `original` and `corrected` are parsed JSON; `actor` is
    who made it; `created_at` is Unix milliseconds."""

    def __init__(self, input, original, corrected, actor, created_at):
        self.input = input
        self.original = original
        self.corrected = corrected
        self.actor = actor
        self.created_at = created_at

    def __repr__(self):
        return (
            f"Correction(input={self.input!r}, original={self.original!r}, "
            f"corrected={self.corrected!r}, actor={self.actor!r}, "
            f"created_at={self.created_at!r})"
        )


def _parse(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def corrections(action, limit=10):
    """The most recent corrections for `action`, newest first, at most `limit`."""
    if _wit.feedback is None:
        return []
    return [
        Correction(_parse(c.input), _parse(c.original), _parse(c.corrected), c.actor,
                   c.created_at)
        for c in _wit.feedback.corrections(action, int(limit))
    ]
