"""The plateau rule, decay on plateau, convergence, switches and the decay budget after convergence, on
hand-made validation curves."""

import pytest

from bnnprobe.training.stopping import PlateauRule, Segment, Stopping, StoppingState


@pytest.mark.parametrize("curve,patience,tol,expected", [
    ([1.0, 0.9, 0.8, 0.7], 2, 0.05, False),     # the best improved by 22% over the last 2 evaluations
    ([1.0, 0.9, 0.899, 0.898], 2, 0.05, True),   # 0.2% over the last 2
    ([1.0, 0.99], 2, 0.05, False),               # not enough evaluations yet
    ([1.0, 1.0, 1.1], 1, 0.01, True),            # got worse
    ([1.0, 0.6, 0.3, 0.9], 2, 0.05, False),      # a spike up at the end: the best of the window still improved
    ([2.0, 1.0, 0.5], 2, 0.7, False),            # the best fell by 75% >= 70% over the last 2
])
def test_plateau_on_hand_made_curves(curve, patience, tol, expected):
    assert PlateauRule(patience, tol).reached(curve) is expected


def test_the_averaged_rule_reads_full_windows_only():
    # a loss that only fluctuates around 1.0: its best keeps creeping down by chance, its 4-evaluation average does not
    curve = [1.0, 0.95, 1.05, 0.96, 1.02, 0.97, 1.03, 1.0, 1.04, 0.94]
    assert not PlateauRule(2, 0.01).reached(curve)  # 0.94 is a new record, 1% below 0.95
    rule = PlateauRule(2, 0.01, smooth=4)
    assert rule.reached(curve)
    full = [sum(curve[i - 3:i + 1]) / 4 for i in range(3, len(curve))]  # by hand: 7 full windows
    assert rule.averages(curve) == pytest.approx(full)
    assert min(full[-2:]) > min(full[:-2]) * 0.99
    # 5 evaluations are not enough to decide with 4-wide windows and patience 2 (a partial average is no evidence)
    assert rule.min_evaluations == 6 and not rule.reached([1.0, 1.0, 1.0, 1.0, 1.0])
    assert rule.reached([1.0] * 6)


def test_a_steady_decline_faster_than_the_tolerance_never_plateaus():
    curve = [0.98 ** k for k in range(200)]  # 2% per evaluation
    assert not any(PlateauRule(3, 0.05).reached(curve[:i]) for i in range(1, 201))
    assert not any(PlateauRule(3, 0.05, smooth=5).reached(curve[:i]) for i in range(1, 201))


def feed(stopping, curve, eval_every=10):
    """Observe ``curve`` evaluation by evaluation, as the trainer does; returns the state and what happened when."""
    state, history, happened = StoppingState(), [], {}
    for i, loss in enumerate(curve):
        history.append(loss)
        what = stopping.observe(state, i * eval_every, history)
        if what:
            happened[i * eval_every] = what
        if state.finished:
            break
    return state, happened


FLAT = [1.0, 0.5] + [0.4] * 40  # a drop, then flat: it plateaus as soon as the rule can tell


def test_decay_on_plateau_then_convergence_after_the_last_reduction():
    rule = PlateauRule(patience=2, rel_tol=0.01)
    stopping = Stopping((Segment("ste-vanilla", lr=1.0, reductions=2),), rule, factor=0.1)
    state, happened = feed(stopping, FLAT)
    # by hand: at step 30 the best of the last two (0.4) is still 20% below the best before (0.5); at step 40 it is
    # not below 0.4: a plateau. Each new segment of the rule starts at the evaluation of the decay and needs 3
    assert happened == {40: "decay", 60: "decay", 80: "end"}
    assert Stopping.steps_of(state, "converged") == [80] and state.finished
    assert stopping.lr(state) == pytest.approx(0.01)  # cut twice by 10


def test_a_switch_at_convergence_starts_the_second_estimator_afresh():
    rule = PlateauRule(patience=2, rel_tol=0.01)
    stopping = Stopping((Segment("ste-vanilla", 1.0, reductions=1), Segment("cdg", 0.3, reductions=1)), rule)
    state, happened = feed(stopping, FLAT)
    assert happened == {40: "decay", 60: "switch", 80: "decay", 100: "end"}
    assert Stopping.steps_of(state, "converged") == [60, 100]
    assert stopping.current(state).estimator == "cdg" and stopping.lr(state) == pytest.approx(0.03)


def test_a_switch_at_the_first_plateau_or_at_a_fixed_step():
    rule = PlateauRule(patience=2, rel_tol=0.01)
    at_plateau = Stopping((Segment("ste-vanilla", 1.0, 3, end="plateau"), Segment("cdg", 0.3, 0)), rule)
    state, happened = feed(at_plateau, FLAT)
    assert happened == {40: "switch", 60: "end"} and Stopping.steps_of(state, "plateau") == [40]
    fixed = Stopping((Segment("ste-vanilla", 1.0, 1, end=70), Segment("cdg", 0.3, 0)), rule)
    state, happened = feed(fixed, FLAT)
    # it decays at 40, converges at 60 (and trains on at that step size), switches at the fixed step 70
    assert happened == {40: "decay", 60: "converged", 70: "switch", 90: "end"}


def test_a_control_goes_on_after_converging_with_the_decay_budget_of_a_switch():
    rule = PlateauRule(patience=2, rel_tol=0.01)
    stopping = Stopping((Segment("ste-vanilla", 1.0, reductions=1, extra_reductions=1),), rule)
    state, happened = feed(stopping, FLAT)
    assert happened == {40: "decay", 60: "converged", 80: "end"}
    assert Stopping.steps_of(state, "converged") == [60] and Stopping.steps_of(state, "decay") == [40, 60]


def test_a_run_that_never_plateaus_never_converges():
    stopping = Stopping((Segment("cdg", 1.0, 2),), PlateauRule(2, 0.01))
    state, happened = feed(stopping, [0.9 ** k for k in range(50)])
    assert happened == {} and not state.finished and not Stopping.steps_of(state, "converged")


def test_bad_runs_are_refused():
    rule = PlateauRule(2, 0.01)
    with pytest.raises(ValueError, match="decay factor"):
        Stopping((Segment("cdg", 1.0, 1),), rule, factor=1.5)
    with pytest.raises(ValueError, match="last segment"):
        Stopping((Segment("cdg", 1.0, 1), Segment("ste-vanilla", 1.0, 1, end="plateau")), rule)
    with pytest.raises(ValueError, match="only the last segment"):
        Stopping((Segment("cdg", 1.0, 1, extra_reductions=1), Segment("ste-vanilla", 1.0, 1)), rule)
    with pytest.raises(ValueError, match="patience"):
        PlateauRule(0, 0.01)
