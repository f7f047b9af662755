"""Errors the command line turns into one paragraph that need no heavy import to catch."""


class IncompleteOutput(RuntimeError):
    """The output does not hold every input row (a scores folder short of rows): refused,
    never written short silently."""


class ModelNotFound(LookupError):
    """A model URI that names no loadable lead-scoring bundle (or whose tracking store
    cannot be reached); the message says what the store does have. The command line
    exits with code 3."""


class StoreUnreachable(ModelNotFound):
    """The tracking store or registry cannot be reached (exit code 3, as for a missing
    model): nothing is compared or promoted while it is away."""


class LeadInputError(ValueError):
    """A lead the scorer cannot read, naming the field and the reason (raised by
    :mod:`predictive_scoring.online`; the service catches it without importing the model's
    libraries).

    Attributes:
        field: The attribute (or ``created_at`` / ``as_of``) at fault.
        reason: What is wrong with it, for the person who sent it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
