"""Small helpers shared by the tests."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest


def message_of(error: type[Exception], call: Callable[..., object], *args: object) -> str:
    """The message of the ``error`` that ``call(*args)`` raises (fails if it does not)."""
    with pytest.raises(error) as caught:
        call(*args)
    return str(caught.value)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
