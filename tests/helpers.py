"""Small helpers shared by the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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


def stop_server(server: subprocess.Popen, grace_seconds: float) -> None:
    """End a server started in its own process group (with its workers): SIGTERM, so it
    shuts down cleanly, then SIGKILL if it lingers past the grace."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=grace_seconds)
