"""A shallow walk over JSON bytes for the one case the parser cannot explain: nesting too
deep for it.

msgspec (like every recursive parser) gives up past about 1,000 levels with a bare
``RecursionError``: no path, and in a batch no way to tell one lead from the others. These
functions walk the body's tokens without recursion (a regex finds strings and brackets;
numbers and literals are skipped) to name the field that holds the deepest nesting and to
cut a batch's ``leads`` into its items, so that each lead is answered on its own. They run
only after the parser failed, so the hot path never pays for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


def _walk(body: bytes) -> Iterator[tuple[re.Match[bytes], list[str | int]]]:
    """Each token with the path of the container it sits in (keys and indexes)."""
    path: list[str | int] = []
    in_object: list[bool] = []
    awaiting_key: list[bool] = []
    for token in _TOKEN.finditer(body):
        first = token.group()[0]
        if first in _OPEN:
            yield token, path
            in_object.append(first == ord("{"))
            awaiting_key.append(first == ord("{"))
            path.append("" if first == ord("{") else 0)
        elif first in _CLOSE:
            if path:
                path.pop()
                in_object.pop()
                awaiting_key.pop()
            yield token, path
        elif first == ord(","):
            if in_object and in_object[-1]:
                awaiting_key[-1] = True
            elif path:
                path[-1] = int(path[-1]) + 1
            yield token, path
        elif first == ord('"') and awaiting_key and awaiting_key[-1]:
            path[-1] = _text(token.group())
            awaiting_key[-1] = False
        else:
            yield token, path


def deepest(body: bytes) -> tuple[list[str | int], int]:
    """The path to the first most deeply nested container, and its depth."""
    best: list[str | int] = []
    depth = 0
    for token, path in _walk(body):
        if token.group()[0] in _OPEN and len(path) + 1 > depth:
            depth, best = len(path) + 1, list(path)
    return best, depth


def array_items(body: bytes, key: str) -> list[bytes] | None:
    """The items of the top-level object's array ``key``, each as its own bytes (None
    when the body is not an object holding such an array)."""
    items: list[bytes] = []
    start: int | None = None
    for token, path in _walk(body):
        first = token.group()[0]
        if path == [key] and first == ord("[") and start is None:
            start = token.end()
        elif start is not None and len(path) == 2 and path[0] == key and first == ord(","):
            items.append(body[start:token.start()])
            start = token.end()
        elif start is not None and path == [key] and first == ord("]"):
            items.append(body[start:token.start()])
            return [item for item in items if item.strip()] or None
    return None


def _text(token: bytes) -> str:
    try:
        return json.loads(token)
    except ValueError:
        return token.decode("utf-8", "replace").strip('"')
