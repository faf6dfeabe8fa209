"""`Loader`: builds batches ahead of the training loop in a background thread and moves them to the device.

The reader runs in one daemon thread that keeps up to `prefetch` batches ready. On CUDA each of the reader's
`device_batches()` is pinned and copied on the loader's own stream with `non_blocking=True` (a Raw reader's
are undecoded records, split on the GPU after the copy), so the copy overlaps the step that is running
instead of queueing behind it; the consumer's stream waits for the copy's event before it uses the batch.
On CPU batches pass through unchanged. An exception in the reader is re-raised in the consumer with its type
and message. Leaving the loop early (break, exception, `close()`) stops the thread; nothing hangs.

Example:
    loader = Loader(make_reader("norm", "data/file_list.txt", spec, options), "cuda")
    for batch in loader:
        step(batch)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch

from ctrflow.readers.types import Batch, Reader, Transfer
from ctrflow.readers.worker_threads import END, Failure, drain, put_unless_stopped


class _Copying:
    """A batch whose copy to the device was queued on the loader's stream; `event` marks its end."""

    def __init__(self, batch: Batch, event: torch.cuda.Event) -> None:
        self.batch, self.event = batch, event

    def ready(self) -> Batch:
        """The batch, once the consumer's current stream waits for the copy (and keeps its memory alive)."""
        stream = torch.cuda.current_stream(self.batch.label.device)
        stream.wait_event(self.event)
        for tensor in _tensors(self.batch):
            tensor.record_stream(stream)  # its memory is not reused before this stream is done with it
        return self.batch


def _tensors(batch: Batch) -> list[torch.Tensor]:
    sparse = [t for part in batch.sparse.values() for t in (part.keys, part.offsets)]
    return [batch.label, batch.dense, *sparse]


class Loader:
    """Prefetching, device-placing wrapper around a `Reader`.

    Args:
        reader: the source of CPU batches.
        device: where batches go ("cpu", "cuda", "cuda:1", or a `torch.device`).
        prefetch: batches built ahead (at least 1).
    """

    def __init__(self, reader: Reader, device: torch.device | str = "cpu", prefetch: int = 2) -> None:
        if prefetch < 1:
            raise ValueError(f"Loader: prefetch must be at least 1, received {prefetch}.")
        self.reader = reader
        self.device = torch.device(device)
        self.prefetch = prefetch
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._copy_stream: torch.cuda.Stream | None = None

    def __iter__(self) -> Iterator[Batch]:
        self.close()
        stop = threading.Event()
        out: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        thread = threading.Thread(target=self._produce, args=(out, stop), daemon=True, name="ctrflow-loader")
        self._stop, self._thread = stop, thread
        thread.start()
        try:
            while True:
                item = out.get()
                if item is END:
                    return
                if isinstance(item, Failure):
                    raise item.error
                yield item.ready() if isinstance(item, _Copying) else item
        finally:
            self._shutdown(stop, thread, out)

    def close(self) -> None:
        """Stop the background thread, if one runs."""
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
        self._stop = self._thread = None

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _produce(self, out: queue.Queue[Any], stop: threading.Event) -> None:
        iterator = self.reader.device_batches() if self.device.type == "cuda" else iter(self.reader)
        try:
            for batch in iterator:
                if not put_unless_stopped(out, self._place(batch), stop):
                    return
            put_unless_stopped(out, END, stop)
        except BaseException as error:  # re-raised in the consumer
            put_unless_stopped(out, Failure(error), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _place(self, batch: Transfer) -> Batch | _Copying:
        if self.device.type == "cuda":
            if self._copy_stream is None:
                self._copy_stream = torch.cuda.Stream(self.device)
            with torch.cuda.stream(self._copy_stream):
                placed = batch.pin_memory().to(self.device, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
            return _Copying(placed, event)
        return batch.to(self.device)  # on CPU the same tensors

    @staticmethod
    def _shutdown(stop: threading.Event, thread: threading.Thread, out: queue.Queue[Any]) -> None:
        stop.set()
        drain(out)
        thread.join(timeout=10)
