"""Memos of pure functions of a string a sender chose (an address, an event type).

Such a function runs on every request, and a sender keeps sending the same few
inputs, so its answers are kept (least recently used first out). Only inputs
no longer than a real one are kept: a sender's megabyte is answered all the
same, but uncached, so nobody can fill a process's memory with giant inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ShortInputMemo(Generic[T]):
    def __init__(self, function: Callable[[str], T], maxsize: int, longest: int):
        self.function = function
        self.longest = longest
        self._cached = functools.lru_cache(maxsize=maxsize)(function)
        functools.update_wrapper(self, function)

    def __call__(self, text: str) -> T:
        return self._cached(text) if len(text) <= self.longest else self.function(text)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        self._cached.cache_clear()


def memo_short(maxsize: int, longest: int) -> Callable[[Callable[[str], T]], ShortInputMemo[T]]:
    """Keep up to `maxsize` answers, for inputs of at most `longest` characters."""

    def decorate(function: Callable[[str], T]) -> ShortInputMemo[T]:
        return ShortInputMemo(function, maxsize, longest)

    return decorate
