"""Round-robin over worker threads: the hand-out order of HugeCTR's reader workers (formats spec §1.4).

Each producer is a callable returning an iterator of items (batches). With one producer it runs inline;
with several each runs in its own daemon thread feeding a small queue, and the consumer takes item k from
producer k mod W. A producer that ends leaves the rotation (epoch mode); an exception in a producer is
re-raised in the consumer. Closing the consumer (or dropping it) stops and joins every thread. The
hand-over helpers (`END`, `Failure`, `put_unless_stopped`, `drain`) serve `Loader`'s thread too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

END = object()  # a producer's last item
_POLL_SECONDS = 0.05


class Failure:
    """An exception a producer thread hands to its consumer, which re-raises it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def round_robin(producers: Sequence[Callable[[], Iterator[T]]], depth: int = 2) -> Iterator[T]:
    """Yield producer 0's first item, producer 1's first, ..., then each producer's second, and so on."""
    if len(producers) == 1:
        yield from producers[0]()
        return
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=depth) for _ in producers]
    threads = [
        threading.Thread(target=_run, args=(produce, out, stop), daemon=True, name=f"ctrflow-reader-{w}")
        for w, (produce, out) in enumerate(zip(producers, queues, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        active = list(range(len(producers)))
        while active:
            for worker in list(active):
                item = queues[worker].get()
                if item is END:
                    active.remove(worker)
                elif isinstance(item, Failure):
                    raise item.error
                else:
                    yield item
    finally:
        stop.set()
        for out in queues:
            drain(out)
        for thread in threads:
            thread.join(timeout=10)


def _run(produce: Callable[[], Iterator[Any]], out: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for item in produce():
            if not put_unless_stopped(out, item, stop):
                return
        put_unless_stopped(out, END, stop)
    except BaseException as error:  # handed to the consumer, which re-raises it
        put_unless_stopped(out, Failure(error), stop)


def put_unless_stopped(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item`, waiting while `out` is full; False once `stop` is set, when the producer should end.

    Also False when `stop` was set while the put waited: the consumer's drain made room, but nobody reads on.
    """
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_SECONDS)
            return not stop.is_set()
        except queue.Full:
            continue
    return False


def drain(out: queue.Queue[Any]) -> None:
    """Empty `out`, freeing a producer blocked on a full queue."""
    while True:
        try:
            out.get_nowait()
        except queue.Empty:
            return
