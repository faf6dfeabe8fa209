"""The dask runner: vvgpu → ranks, one torch.distributed rank per worker, and fast failure on faults.

Rank functions travel to the workers by value (cloudpickle), since the workers cannot import pytest's
test modules. The fault tests restart the shared cluster's workers, as `run_on_ranks` does after a failure.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import cloudpickle
import pytest
import torch
import torch.distributed as dist

from ctrflow.pipeline.cluster import ClusterSpec, run_on_ranks, start_cluster

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAULT_DEADLINE_S = 30.0


def describe_rank(rank, world_size, offset):
    total = torch.tensor([float(rank)])
    dist.all_reduce(total)
    env = {name: os.environ[name] for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    return rank + offset, world_size, float(total.item()), env, dist.get_backend(), os.getpid()


def fail_on_rank_one(rank, world_size):
    if rank == 1:
        raise ValueError("bad shard on purpose")
    return rank


def die_during_collective(rank, world_size, how):
    if rank == 1:
        time.sleep(0.3)
        if how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)
    ones = torch.ones(1)
    dist.all_reduce(ones)  # rank 1 never arrives
    return ones.item()


def die_while_peer_computes(rank, world_size):
    if rank == 1:
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)  # plain Python work: no collective notices the dead peer
    return rank


def skip_the_collective(rank, world_size):
    if rank == 0:
        dist.all_reduce(torch.ones(1))  # rank 1 is busy elsewhere: the process-group timeout ends this
    else:
        time.sleep(120)
    return rank


@pytest.fixture(scope="module")
def cluster():
    with start_cluster(ClusterSpec.from_vvgpu([[0, 1]]), collective_timeout_s=3.0) as running:
        yield running


# -- ClusterSpec ---------------------------------------------------------------------------------------


def test_vvgpu_of_one_host_gives_one_rank_per_device():
    spec = ClusterSpec.from_vvgpu([[0, 1, 2, 3]])
    assert (spec.world_size, spec.num_hosts, spec.device) == (4, 1, "cpu")


def test_vvgpu_of_two_hosts_numbers_ranks_host_by_host():
    spec = ClusterSpec.from_vvgpu([[0, 1], [0, 1]], device="cuda")
    assert (spec.world_size, spec.num_hosts, spec.as_vvgpu()) == (4, 2, [[0, 1], [0, 1]])


@pytest.mark.parametrize(
    ("vvgpu", "message"),
    [([[]], "every host needs at least one device id"), ([[0, 0]], "must be distinct"), ([[-1]], ">= 0")],
)
def test_invalid_vvgpu_is_rejected_with_the_reason(vvgpu, message):
    with pytest.raises(ValueError, match=message):
        ClusterSpec.from_vvgpu(vvgpu)


def test_vvgpu_that_is_not_a_list_of_lists_raises_type_error():
    with pytest.raises(TypeError, match=r"list of lists of device ids, e.g. \[\[0, 1\]\]"):
        ClusterSpec.from_vvgpu([0, 1])  # type: ignore[list-item]


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match='device must be "cpu" or "cuda"'):
        ClusterSpec.from_vvgpu([[0]], device="tpu")  # type: ignore[arg-type]


def test_several_hosts_without_scheduler_address_say_what_to_start():
    with pytest.raises(ValueError, match="spans 2 hosts but no scheduler address"):
        start_cluster(ClusterSpec.from_vvgpu([[0], [0]]))


# -- running ranks -------------------------------------------------------------------------------------


def test_run_on_ranks_returns_results_in_rank_order_inside_a_gloo_group(cluster):
    results = run_on_ranks(cluster, describe_rank, 100)
    assert [r[0] for r in results] == [100, 101]
    assert all(r[1] == 2 and r[2] == 1.0 and r[4] == "gloo" for r in results)
    assert [r[3]["RANK"] for r in results] == ["0", "1"]
    assert [r[3]["LOCAL_RANK"] for r in results] == ["0", "1"]
    assert results[0][3]["MASTER_ADDR"] == results[1][3]["MASTER_ADDR"] == "127.0.0.1"
    assert results[0][5] != results[1][5] != os.getpid()  # one process per rank


@pytest.mark.slow  # replaces the workers after the failure: ~5-15 s on 2 busy cores
def test_a_rank_that_raises_fails_the_run_naming_that_rank(cluster):
    with pytest.raises(RuntimeError, match="Rank 1 of 2 failed: ValueError: bad shard on purpose"):
        run_on_ranks(cluster, fail_on_rank_one)
    assert [r[0] for r in run_on_ranks(cluster, describe_rank, 0)] == [0, 1]


@pytest.mark.slow  # replaces the workers after the failure: ~5-15 s on 2 busy cores
@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_worker_killed_during_a_collective_ends_the_run_within_seconds(cluster, how, caplog):
    caplog.set_level(logging.CRITICAL, logger="distributed")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"Rank 1 of 2: its dask worker .* died during the run"):
        run_on_ranks(cluster, die_during_collective, how)
    assert time.monotonic() - start < FAULT_DEADLINE_S
    assert [r[0] for r in run_on_ranks(cluster, describe_rank, 0)] == [0, 1]  # restarted, usable again


@pytest.mark.slow  # replaces the workers after the failure: ~5-15 s on 2 busy cores
def test_a_worker_killed_while_its_peer_computes_is_noticed_without_a_collective(cluster, caplog):
    caplog.set_level(logging.CRITICAL, logger="distributed")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"Rank 1 of 2: its dask worker .* died"):
        run_on_ranks(cluster, die_while_peer_computes)
    assert time.monotonic() - start < FAULT_DEADLINE_S
    assert [r[0] for r in run_on_ranks(cluster, describe_rank, 0)] == [0, 1]


@pytest.mark.slow  # replaces the workers after the failure: ~5-15 s on 2 busy cores
def test_a_rank_stuck_waiting_for_a_peer_fails_after_the_collective_timeout(cluster):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="Rank 0 of 2 failed"):
        run_on_ranks(cluster, skip_the_collective)
    assert time.monotonic() - start < FAULT_DEADLINE_S
    assert [r[0] for r in run_on_ranks(cluster, describe_rank, 0)] == [0, 1]


def test_replacing_the_local_cluster_gives_fresh_workers_for_the_same_ranks(cluster):
    before = {r[5] for r in run_on_ranks(cluster, describe_rank, 0)}
    cluster.replace_local_cluster()
    results = run_on_ranks(cluster, describe_rank, 0)
    assert [r[0] for r in results] == [0, 1]
    assert not before & {r[5] for r in results}


def test_closed_cluster_refuses_to_run():
    spec = ClusterSpec.from_vvgpu([[0]])
    running = start_cluster(spec)
    running.close()
    with pytest.raises(RuntimeError, match="the cluster is closed"):
        run_on_ranks(running, describe_rank, 0)


def test_existing_scheduler_serves_ranks_and_stays_up_after_close(cluster):
    spec = ClusterSpec.from_vvgpu([[0, 1]])
    with start_cluster(spec, scheduler_address=cluster.local_cluster.scheduler_address) as attached:
        assert [r[0] for r in run_on_ranks(attached, describe_rank, 5)] == [5, 6]
    assert [r[0] for r in run_on_ranks(cluster, describe_rank, 0)] == [0, 1]


def test_workers_that_do_not_match_vvgpu_hosts_are_reported(cluster):
    spec = ClusterSpec.from_vvgpu([[0], [0]])
    with (
        start_cluster(spec, scheduler_address=cluster.local_cluster.scheduler_address) as attached,
        pytest.raises(RuntimeError, match=r"workers per host \{'127.0.0.1': 2\} but vvgpu=\[\[0\], \[0\]\]"),
    ):
        run_on_ranks(attached, describe_rank, 0)
