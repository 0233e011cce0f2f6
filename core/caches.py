"""Every process-wide cache, registered in one place and released together.

A module that keeps something for the life of the process (loaded models, file hashes, OCIO
processors, LPIPS networks ...) registers its cache here where it defines it, so that
:func:`release_models` (ComfyUI's "Unload Models", or a caller freeing memory) empties them all:

    _models: dict[str, Model] = {}
    register_cache("my models", _models)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import torch

log = logging.getLogger("latentmirror")


@dataclass(frozen=True)
class Cache:
    name: str
    holds: object  # the dict or the functools.lru_cache function itself
    clear: Callable[[], object]

    def size(self) -> int:
        if isinstance(self.holds, MutableMapping):
            return len(self.holds)
        return self.holds.cache_info().currsize


_CACHES: dict[str, Cache] = {}


def register_cache(name: str, cache, clear: Callable[[], object] | None = None) -> None:
    """Register ``cache``: a dict, or a function wrapped by ``functools.lru_cache``.

    ``clear`` empties it (default: the dict's ``clear`` or the function's ``cache_clear``); give
    one when emptying needs more, e.g. a lock. Registering a name again replaces the entry (a
    module reloaded in development).
    """
    if not isinstance(cache, MutableMapping) and not hasattr(cache, "cache_clear"):
        raise TypeError(f"cache {name!r}: expected a dict or an lru_cache function")
    if clear is None:
        clear = cache.clear if isinstance(cache, MutableMapping) else cache.cache_clear
    _CACHES[name] = Cache(name, cache, clear)


def registered_caches() -> list[Cache]:
    """The registered caches, in registration order."""
    return list(_CACHES.values())


def release_models() -> dict[str, int]:
    """Empty every registered cache; returns how many entries each held.

    >>> isinstance(release_models(), dict)
    True
    """
    released = {}
    for cache in _CACHES.values():
        released[cache.name] = cache.size()
        cache.clear()
    if any(released.values()):
        log.info(
            "latentmirror released its caches: %s",
            ", ".join(f"{name} ({count})" for name, count in released.items() if count),
        )
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return released
