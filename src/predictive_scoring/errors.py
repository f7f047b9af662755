"""Errors the command line turns into one paragraph that need no heavy import to catch."""


class IncompleteOutput(RuntimeError):
    """The output does not hold every input row (a scores folder short of rows): refused,
    never written short silently."""


class ModelNotFound(LookupError):
    """A model URI that names no loadable lead-scoring bundle (or whose tracking store
    cannot be reached); the message says what the store does have. The command line
    exits with code 3."""
