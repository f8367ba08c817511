"""ROS-free approximate-time synchronizer: pairing under jitter, dropping, bounded memory."""
import numpy as np
import pytest

from vla_perception.core.sync import ApproximateTimeSynchronizer


def test_pairs_two_jittery_streams_frame_by_frame():
    rng = np.random.default_rng(0)
    sync = ApproximateTimeSynchronizer(2, queue_size=5, slop=0.01)
    got = []
    sync.register_callback(lambda a, b: got.append((a, b)))
    for k in range(200):
        t = k / 30.0
        # depth arrives a little after colour, with +-4 ms jitter on both stamps
        sync.add(0, t + rng.uniform(-0.004, 0.004), ("rgb", k))
        sync.add(1, t + rng.uniform(-0.004, 0.004), ("depth", k))
    assert len(got) == 200
    assert all(a[1] == b[1] for a, b in got)  # each colour frame with its own depth frame


def test_interleaved_arrival_order_still_pairs_by_stamp():
    sync = ApproximateTimeSynchronizer(2, queue_size=10, slop=0.005)
    out = []
    for k in range(5):
        out.append(sync.add(0, k * 0.1, f"a{k}"))
    for k in range(5):
        out.append(sync.add(1, k * 0.1 + 0.002, f"b{k}"))
    assert [m for m in out if m is not None] == [(f"a{k}", f"b{k}") for k in range(5)]


def test_unpaired_messages_are_never_emitted_and_are_dropped():
    sync = ApproximateTimeSynchronizer(2, queue_size=10, slop=0.01)
    pairs = []
    sync.register_callback(lambda a, b: pairs.append((a, b)))
    for k in range(30):
        sync.add(0, k * 0.1, k)
        if k % 3 != 0:  # every third depth frame is lost
            sync.add(1, k * 0.1 + 0.003, k)
    assert [a for a, _ in pairs] == [k for k in range(30) if k % 3 != 0]
    assert all(a == b for a, b in pairs)
    assert sync.queue_lengths()[0] <= 1  # the unpaired colour frames were discarded, not hoarded
    assert sync.dropped >= 9


def test_stamps_further_apart_than_slop_do_not_pair():
    sync = ApproximateTimeSynchronizer(2, queue_size=10, slop=0.01)
    assert sync.add(0, 1.0, "a") is None
    assert sync.add(1, 1.02, "b") is None
    assert sync.add(1, 1.009, "c") == ("a", "c")


def test_three_streams_need_all_within_slop():
    sync = ApproximateTimeSynchronizer(3, queue_size=10, slop=0.02)
    assert sync.add(0, 0.000, "rgb") is None
    assert sync.add(1, 0.015, "depth") is None
    assert sync.add(2, 0.030, "info") is None  # 0.03 from rgb: too far for the set
    assert sync.add(2, 0.012, "info2") == ("rgb", "depth", "info2")


def test_memory_is_bounded_when_one_stream_is_silent():
    sync = ApproximateTimeSynchronizer(2, queue_size=7, slop=0.01)
    for k in range(10_000):
        sync.add(0, k * 0.01, k)
    assert sync.queue_lengths() == [7, 0]
    assert sync.dropped == 10_000 - 7
    assert [s for s, _ in sync.queues[0]] == pytest.approx([k * 0.01 for k in range(9993, 10_000)])


def test_memory_is_bounded_with_a_constant_offset_beyond_slop():
    sync = ApproximateTimeSynchronizer(2, queue_size=4, slop=0.005)
    for k in range(5000):
        sync.add(0, k * 0.033, k)
        sync.add(1, k * 0.033 + 0.016, k)  # never within slop
    assert sync.matched == 0 and max(sync.queue_lengths()) <= 4


@pytest.mark.parametrize("kwargs", [{"num_inputs": 0}, {"num_inputs": 2, "queue_size": 0},
                                    {"num_inputs": 2, "slop": -1.0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        ApproximateTimeSynchronizer(**kwargs)
