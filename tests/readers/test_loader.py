from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import torch

from ctrflow.readers import Batch, DataSpec, Loader, Reader, ReaderOptions, SparseBatch

SPEC = DataSpec(1, 1, ())


class CountingReader(Reader):
    """Yields `count` batches (forever when None), then raises `error` if given."""

    def __init__(self, count: int | None, error: Exception | None = None) -> None:
        self.spec, self.options = SPEC, ReaderOptions(batch_size=2)
        self.count, self.error, self.produced = count, error, 0

    def __iter__(self) -> Iterator[Batch]:
        index = 0
        while self.count is None or index < self.count:
            self.produced += 1
            keys = torch.tensor([index], dtype=torch.int64)
            yield Batch(
                torch.full((2, 1), float(index)),
                torch.zeros(2, 1),
                {"data": SparseBatch(keys, torch.tensor([0, 1, 1]), 1)},
            )
            index += 1
        if self.error is not None:
            raise self.error

    def set_source(self, source="") -> None:
        pass

    @property
    def source(self) -> str:
        return "counting"


def test_cpu_batches_pass_through_in_order():
    batches = list(Loader(CountingReader(5), "cpu"))
    assert [b.label[0, 0].item() for b in batches] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert batches[0].sparse["data"].keys.device.type == "cpu"


def test_reader_exception_is_reraised_with_its_message():
    loader = Loader(CountingReader(2, ValueError("Norm file 'x.data': record 7 is broken")))
    seen = []
    with pytest.raises(ValueError, match="record 7 is broken"):
        for batch in loader:
            seen.append(batch.label[0, 0].item())
    assert seen == [0.0, 1.0]


def test_breaking_out_stops_the_background_thread():
    reader = CountingReader(None)
    loader = Loader(reader, prefetch=2)
    for index, _ in enumerate(loader):
        if index == 3:
            break
    # the generator's finally joins the thread; allow a loaded machine a few seconds to get there
    deadline = time.monotonic() + 10
    while any(t.name == "ctrflow-loader" and t.is_alive() for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the loader thread outlived the loop by 10 s"
        time.sleep(0.05)
    assert reader.produced <= 4 + 2 + 1  # consumed + queue + the one being put


def test_loader_can_be_iterated_twice():
    loader = Loader(CountingReader(2))
    assert len(list(loader)) == 2 and len(list(loader)) == 2


def test_prefetch_below_one_is_rejected():
    with pytest.raises(ValueError, match="prefetch must be at least 1, received 0"):
        Loader(CountingReader(1), prefetch=0)


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_arrive_on_the_device():
    (batch,) = list(Loader(CountingReader(1), "cuda"))
    assert batch.label.is_cuda and batch.sparse["data"].keys.is_cuda
