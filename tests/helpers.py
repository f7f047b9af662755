"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def message_of(error: type[Exception], call: Callable[..., object], *args: object) -> str:
    """The message of the ``error`` that ``call(*args)`` raises (fails if it does not)."""
    with pytest.raises(error) as caught:
        call(*args)
    return str(caught.value)
