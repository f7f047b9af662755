"""API keys: ``X-API-Key`` or ``Authorization: Bearer``, checked in constant time.

Every configured key is compared on every request (no early exit), with
``hmac.compare_digest`` on fixed-length digests, so the time taken says nothing about
which key, or how much of one, matched. Keys are never logged or echoed.

Routes call :func:`authorise` first thing (a plain call: FastAPI's dependency solving for
two security schemes cost more than the whole check), and declare the schemes they accept
in the OpenAPI page with :data:`SECURED`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

from fastapi import HTTPException, Request, status
from pydantic import SecretStr

API_KEY_HEADER = "x-api-key"
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key (or send it as a Bearer token)."},
    "Bearer": {"type": "http", "scheme": "bearer",
               "description": "An API key as a Bearer token."},
}
SECURED: dict[str, Any] = {"security": [{"ApiKey": []}, {"Bearer": []}]}
"""``openapi_extra`` of a route that needs a key."""


class Access(IntEnum):
    """What a key allows."""

    NONE = 0
    SCORE = 1
    ADMIN = 2


class KeyChecker:
    """The configured keys, held as digests."""

    def __init__(self, api_keys: Iterable[SecretStr], admin_keys: Iterable[SecretStr]) -> None:
        self._keys = [(_digest(k.get_secret_value()), Access.SCORE) for k in api_keys]
        self._keys += [(_digest(k.get_secret_value()), Access.ADMIN) for k in admin_keys]

    def access(self, presented: str | None) -> Access:
        """The access a presented key grants (NONE for no key or an unknown one)."""
        if not presented:
            return Access.NONE
        digest = _digest(presented)
        granted = Access.NONE
        for key, access in self._keys:
            if hmac.compare_digest(digest, key):
                granted = max(granted, access)
        return granted


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def presented_key(headers: Any) -> str | None:
    """The key sent as ``X-API-Key``, else as ``Authorization: Bearer <key>``."""
    key = headers.get(API_KEY_HEADER)
    if key:
        return key
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def authorise(request: Request, needed: Access = Access.SCORE) -> None:
    """Let the request through when its key grants ``needed``.

    Raises:
        HTTPException: 401 without a valid key; 403 for a scoring key on an admin route.
    """
    checker: KeyChecker = request.app.state.keys
    access = checker.access(presented_key(request.headers))
    if access < Access.SCORE:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing or unknown API key: send it as X-API-Key or "
                            "Authorization: Bearer", headers={"WWW-Authenticate": "Bearer"})
    if access < needed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not reload the model; "
                            "use an admin key (PREDICTIVE_SCORING_ADMIN_KEYS)")
