"""API keys, declared with each route: ``X-API-Key`` or ``Authorization: Bearer``.

A route declares the access it needs as a dependency, :data:`SCORING` or :data:`ADMIN`
(``dependencies=[SCORING]``, or on its router). That one declaration both guards the
route and documents it: the dependency's two key schemes (``ApiKey``, ``Bearer``) are
FastAPI security schemes, so the OpenAPI page lists them on exactly the routes that
declare an access. :func:`check_declared` refuses to build an app with a route that
declares none and is not public (:data:`PUBLIC`), so a new endpoint cannot ship open by
omission.

Every configured key is compared on every request (no early exit), with
``hmac.compare_digest`` on fixed-length digests, so the time taken says nothing about
which key, or how much of one, matched. Keys are never logged or echoed.

The scoring routes use :class:`RequestRoute`, which skips FastAPI's dependency solving
(for two security schemes it cost more than the whole key check): it reads the access its
route declares once, at start-up, and checks the key itself with the same
:func:`authorise` the dependency calls.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Iterable, Iterator
from enum import IntEnum
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Response, Security, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

API_KEY_HEADER = "x-api-key"
PUBLIC = frozenset({"/health", "/ready", "/metrics"})
"""Routes open without a key (with the docs: ``/openapi.json``, ``/docs``, ``/redoc`` and
their static files)."""


class Access(IntEnum):
    """What a key allows."""

    NONE = 0
    SCORE = 1
    ADMIN = 2


API_KEY_SCHEME = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", auto_error=False,
                              description="An API key (or send it as a Bearer token).")
BEARER_SCHEME = HTTPBearer(scheme_name="Bearer", auto_error=False,
                           description="An API key as a Bearer token.")


class KeyAccess:
    """The dependency a route declares: its request's key must grant ``needed``.

    The two schemes are its parameters so that FastAPI documents them with the route;
    the key itself is read by :func:`authorise`, the one check every route runs.

    Args:
        needed: The access the route needs.
    """

    def __init__(self, needed: Access) -> None:
        self.needed = needed

    def __call__(self, request: Request,
                 _api_key: Annotated[str | None, Security(API_KEY_SCHEME)] = None,
                 _bearer: Annotated[HTTPAuthorizationCredentials | None,
                                    Security(BEARER_SCHEME)] = None) -> Access:
        return authorise(request, self.needed)

    def __repr__(self) -> str:
        return f"KeyAccess({self.needed.name})"


SCORING = Security(KeyAccess(Access.SCORE))
"""Scoring and model metadata: any configured key."""
ADMIN = Security(KeyAccess(Access.ADMIN))
"""Reloading the model: an admin key."""


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


def authorise(request: Request, needed: Access) -> Access:
    """Let the request through when its key grants ``needed``.

    Returns:
        The access the key grants.

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
    return access


# ------------------------------------------------------------------ declarations
def declared_access(dependant: Dependant) -> Access | None:
    """The access a route's dependencies declare (the highest), None when none does."""
    found = [dependency.call.needed for dependency in _dependencies(dependant)
             if isinstance(dependency.call, KeyAccess)]
    return max(found) if found else None


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def app_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, those of included routers too (FastAPI keeps an included
    router as one entry of ``app.routes`` from 0.16x on)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into app.routes
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def is_public(path: str, docs_paths: Iterable[str]) -> bool:
    """Whether a route path is served without a key: health, readiness, metrics, docs."""
    return path in PUBLIC or any(path == docs or path.startswith(f"{docs}/")
                                 for docs in docs_paths)


def check_declared(app: FastAPI, docs_paths: Iterable[str]) -> None:
    """Refuse an app with a route that neither declares an access nor is public.

    Raises:
        RuntimeError: Naming the routes.
    """
    docs_paths = tuple(docs_paths)
    open_routes = [route.path for route in app_routes(app)
                   if not is_public(route.path, docs_paths)
                   and (getattr(route, "dependant", None) is None
                        or declared_access(route.dependant) is None)]
    if open_routes:
        raise RuntimeError(f"routes {open_routes} declare no access: add "
                           "dependencies=[SCORING] (or ADMIN), or list them in PUBLIC")


# ------------------------------------------------------------------ the hot routes
class RequestRoute(APIRoute):
    """A route whose endpoint takes the :class:`Request` and returns a :class:`Response`
    itself, documented like any other (response model, errors, ``openapi_extra``, the
    declared access).

    FastAPI's custom route class hook (``get_route_handler``): the endpoint is the handler,
    so a request skips dependency solving and response validation, which have nothing to
    do here (the endpoint reads the raw body and writes orjson) and cost about as much as
    the whole no-op endpoint. The access the route declares is read once here and checked
    with :func:`authorise` before the endpoint runs; any other dependency is refused (it
    would never run).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        others = [d.call for d in self.dependant.dependencies
                  if not isinstance(d.call, KeyAccess)]
        if others:
            raise TypeError(f"{self.path}: a RequestRoute runs no dependencies but its "
                            f"declared access, not {others}")
        needed = declared_access(self.dependant)
        endpoint = self.endpoint
        if needed is None:
            return endpoint

        async def secured(request: Request) -> Response:
            authorise(request, needed)
            return await endpoint(request)

        return secured
