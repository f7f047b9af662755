"""API keys: ``X-API-Key`` or ``Authorization: Bearer``, checked in constant time.

Every configured key is compared on every request (no early exit), with
``hmac.compare_digest`` on fixed-length digests, so the time taken says nothing about
which key, or how much of one, matched. Keys are never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from enum import IntEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key (or send it as a Bearer token).")
BEARER = HTTPBearer(auto_error=False, description="An API key as a Bearer token.")


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


def _presented(api_key: str | None, bearer: HTTPAuthorizationCredentials | None) -> str | None:
    return api_key or (bearer.credentials if bearer else None)


def _access(request: Request, api_key: str | None, bearer: HTTPAuthorizationCredentials | None
            ) -> Access:
    checker: KeyChecker = request.app.state.keys
    return checker.access(_presented(api_key, bearer))


def _unauthorised() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED,
                         "missing or unknown API key: send it as X-API-Key or "
                         "Authorization: Bearer", headers={"WWW-Authenticate": "Bearer"})


async def require_key(request: Request,
                api_key: Annotated[str | None, Depends(API_KEY_HEADER)],
                bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
                ) -> None:
    """Any valid key (scoring or admin); 401 otherwise.

    ``async`` although it never awaits: FastAPI runs a sync dependency in the thread
    pool, a hop that cost more than the whole check.
    """
    if _access(request, api_key, bearer) < Access.SCORE:
        raise _unauthorised()


async def require_admin(request: Request,
                  api_key: Annotated[str | None, Depends(API_KEY_HEADER)],
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
                  ) -> None:
    """An admin key; 401 without a valid key, 403 with a scoring-only one."""
    access = _access(request, api_key, bearer)
    if access < Access.SCORE:
        raise _unauthorised()
    if access < Access.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not reload the model; "
                            "use an admin key (PREDICTIVE_SCORING_ADMIN_KEYS)")


ApiKey = Depends(require_key)
AdminKey = Depends(require_admin)
