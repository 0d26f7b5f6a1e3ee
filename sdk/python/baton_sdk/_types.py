"""`Failure` and `Call`: the contract's failure record and call context, in Python."""

import json

from . import _wit


class Failure(Exception):
    """A typed failure: raise it from an action.

    `code` is stable and machine-readable (`not_found`, `upstream_unavailable`);
    `retryable` tells the engine whether another attempt can help; `details` is anything
    JSON-serialisable a person fixing the problem needs.
    """

    def __init__(self, code, message, retryable=False, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = bool(retryable)
        self.details = details

    def __str__(self):
        return f"{self.code}: {self.message}"

    def __repr__(self):
        return (
            f"Failure({self.code!r}, {self.message!r}, retryable={self.retryable!r}, "
            f"details={self.details!r})"
        )

    def to_wit(self):
        """This failure as the contract's `failure` record."""
        details = None
        if self.details is not None:
            try:
                details = json.dumps(self.details)
            except (TypeError, ValueError):
                details = json.dumps(repr(self.details))
        return _wit.types.Failure(
            code=str(self.code),
            message=str(self.message),
            retryable=self.retryable,
            details=details,
        )


class Call:
    """Where a call comes from. Every attempt of one workflow step sees the same
    `idempotency_key`: forward it (e.g. as an `Idempotency-Key` header) to make a side
    effect exactly-once at the far end."""

    def __init__(self, run_id="", step_id="", attempt=1, idempotency_key=""):
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self.idempotency_key = idempotency_key

    def __repr__(self):
        return (
            f"Call(run_id={self.run_id!r}, step_id={self.step_id!r}, "
            f"attempt={self.attempt!r}, idempotency_key={self.idempotency_key!r})"
        )
