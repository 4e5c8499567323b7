"""The two ways a command fails: bad input (exit 2, nothing changed) and a failure on the host (exit 1)."""


class BadInput(ValueError):
    """Input refused before anything was changed."""


class OpsError(RuntimeError):
    """A command that reached the host and failed there."""
