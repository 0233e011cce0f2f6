"""Per-frame work (EXR decode and encode) on a few worker threads, in order, with a bound on the
frames in flight so memory stays flat.

OpenImageIO releases the GIL while it decodes and encodes, so frames overlap with each other and
with whatever the caller does meanwhile (copying a decoded frame into its batch, a device
computing). Results come back in the order of the items, whatever order the threads finish in;
the first item that fails, in that order, is the one raised.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..errors import error

Item = TypeVar("Item")
Result = TypeVar("Result")

IO_THREADS_VARIABLE = "LATENTMIRROR_IO_THREADS"
_MOST_DEFAULT_THREADS = 4  # beyond this the disk and OpenEXR's own threads are the limit


def io_threads() -> int:
    """How many frames are decoded or encoded at once: $LATENTMIRROR_IO_THREADS, else the CPU
    count up to 4. 1 works frame after frame on the calling thread."""
    text = os.environ.get(IO_THREADS_VARIABLE, "").strip()
    if not text:
        return max(1, min(_MOST_DEFAULT_THREADS, os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise error(f"${IO_THREADS_VARIABLE} must be a whole number >= 1, not '{text}'")
    return value


def frames_in_flight(threads: int) -> int:
    """The most items started and not yet taken by the caller: one queued behind each busy
    thread, so a thread never waits for the caller to ask for the next."""
    return 2 * threads


def ordered_map(
    work: Callable[[Item], Result], items: Iterable[Item], threads: int | None = None
) -> Iterator[Result]:
    """``work(item)`` for each item on ``threads`` worker threads (default :func:`io_threads`),
    yielded in the items' order.

    At most :func:`frames_in_flight` items are started and not yet taken. When an item fails
    (or the caller stops taking results), the items not started are cancelled and the ones
    running are waited for, so no work goes on after this returns or raises; then the first
    failure in order is raised.
    """
    threads = threads or io_threads()
    if threads == 1:  # the serial path: no thread at all
        for item in items:
            yield work(item)
        return
    bound = frames_in_flight(threads)
    pending: deque[Future[Result]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="latentmirror-io") as pool:
        try:
            for item in items:
                if len(pending) == bound:
                    yield pending.popleft().result()
                pending.append(pool.submit(work, item))
            while pending:
                yield pending.popleft().result()
        finally:  # a failure or an early stop: start nothing more; the pool waits for the rest
            for future in pending:
                future.cancel()
