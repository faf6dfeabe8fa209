"""LearningRateScheduler against the formula table of semantics spec §5."""

import pytest

from ctrflow.dense.lr_schedule import LearningRateScheduler


def spec_rate(step, base, warmup, start, steps, power, end):
    if step <= warmup:
        return step * base / warmup
    if start == 0 or step <= start:
        return base
    if step <= start + steps:
        return max(base * ((start + steps - step) / steps) ** power, end)
    return end


@pytest.mark.parametrize(
    "params",
    [
        (0.1, 1, 0, 1, 2.0, 0.0),
        (0.1, 5, 0, 1, 2.0, 0.0),
        (0.1, 3, 6, 10, 2.0, 0.001),
        (1.0, 4, 4, 8, 1.0, 0.0),
        (0.5, 1, 2, 5, 3.0, 0.2),
    ],
)
def test_rates_follow_the_spec_formula_step_by_step(params):
    scheduler = LearningRateScheduler(*params)
    got = [scheduler.get_next() for _ in range(25)]
    assert got == pytest.approx([spec_rate(s, *params) for s in range(1, 26)])


def test_default_schedule_is_constant_from_the_first_step():
    scheduler = LearningRateScheduler(0.001)
    assert [scheduler.get_next() for _ in range(3)] == [0.001, 0.001, 0.001]


def test_known_values_of_a_warmup_then_decay_schedule():
    scheduler = LearningRateScheduler(1.0, warmup_steps=2, decay_start=3, decay_steps=4, decay_power=2.0, end_lr=0.1)
    rates = [scheduler.get_next() for _ in range(9)]
    # warm-up 0.5, 1; constant to step 3; decay ((7-s)/4)^2 floored at 0.1; then end_lr
    assert rates == pytest.approx([0.5, 1.0, 1.0, 0.5625, 0.25, 0.1, 0.1, 0.1, 0.1])


def test_reset_restarts_at_step_zero_with_new_parameters():
    scheduler = LearningRateScheduler(1.0, warmup_steps=4)
    scheduler.get_next()
    scheduler.reset(2.0, warmup_steps=2)
    assert scheduler.get_next() == 1.0


def test_state_dict_restores_the_step():
    scheduler = LearningRateScheduler(1.0, warmup_steps=10)
    for _ in range(3):
        scheduler.get_next()
    restored = LearningRateScheduler(0.0)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.get_next() == scheduler.get_next() == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_lr": -1.0}, r"base_lr=-1.0 \(must be >= 0\)"),
        ({"base_lr": 1.0, "warmup_steps": 0}, r"warmup_steps=0 \(must be >= 1\)"),
        ({"base_lr": 1.0, "decay_steps": 0}, r"decay_steps=0 \(must be >= 1\)"),
        ({"base_lr": 1.0, "decay_power": 0.5}, r"decay_power=0.5 \(must be >= 1.0\)"),
        ({"base_lr": 1.0, "end_lr": -0.1}, r"end_lr=-0.1 \(must be >= 0\)"),
    ],
)
def test_invalid_parameters_are_rejected_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearningRateScheduler(**kwargs)
