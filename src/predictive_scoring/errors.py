"""Errors the command line turns into one paragraph that need no heavy import to catch."""


class IncompleteOutput(RuntimeError):
    """The output does not hold every input row (a scores folder short of rows): refused,
    never written short silently."""
