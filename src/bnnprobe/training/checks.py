"""The training section's checks and derived defaults (torch-free: the config check runs them before any job)."""

from __future__ import annotations

from .schedule import ScheduleError, parse_schedule


class TrainingConfigError(ValueError):
    """A training section that cannot run; the message names the key."""


def check_training(config: dict, default_estimators: list[str], known_estimators: set[str], check_names) -> None:
    """Check ``config["training"]`` and fill in its derived defaults, in place. The probe along training
    runs ``default_estimators`` unless told otherwise, and only ``known_estimators`` (the MLP probe's: its
    tables are compared with them); ``check_names(names, key)`` checks a list of estimator names, raising
    naming the key."""
    training = config["training"]
    for i, text in enumerate(training["schedules"]):
        try:
            parse_schedule(text)
        except ScheduleError as error:
            raise TrainingConfigError(f"key 'training.schedules[{i}]': {error}") from None
    training.setdefault("dims", list(config["probe"]["dims"]))
    training.setdefault("seeds", list(config["probe"]["seeds"]))
    steps, every = training["steps"], training["eval_every"]
    if every > steps:
        raise TrainingConfigError(f"key 'training.eval_every': {every} is more than training.steps = {steps}: a run "
                                  "would be evaluated only at its start and end")
    plateau = training["plateau"]
    evaluations = steps // every + 1
    needed = plateau["smooth"] + plateau["patience"]
    if needed > evaluations:
        raise TrainingConfigError(f"key 'training.plateau.smooth': smooth + patience = {needed} evaluations are needed "
                                  f"before a plateau can be decided, but a run has at most {evaluations} (steps "
                                  f"{steps} / eval_every {every} + 1): no run could ever decay or converge")
    switch = training["switch"]
    if not isinstance(switch, str) and switch >= steps:
        raise TrainingConfigError(f"key 'training.switch': step {switch} is not below training.steps = {steps}")
    for i, text in enumerate(training["controls"]):
        if text not in training["schedules"] or not parse_schedule(text).switches:
            raise TrainingConfigError(f"key 'training.controls[{i}]': {text!r} is not a switch of training.schedules")
    if training["restarts"]:  # A>A for every first estimator of a switch: what a restart alone does
        firsts = [parse_schedule(t).first for t in training["schedules"] if parse_schedule(t).switches
                  and not parse_schedule(t).restarts]
        restarts = [f"{name}>{name}" for name in dict.fromkeys(firsts)]
        training["schedules"] = list(dict.fromkeys([*training["schedules"], *restarts]))
        training["controls"] = list(dict.fromkeys([*training["controls"], *restarts]))
    overlap = sorted(set(training["tuning"]["seeds"]) & set(training["seeds"]))
    if overlap and training["lr"] == "auto":
        raise TrainingConfigError(f"key 'training.tuning.seeds': {overlap} are also training.seeds; the lr must be "
                                  "tuned on seeds disjoint from the reported ones")
    singles = [t for t in training["schedules"] if not parse_schedule(t).switches]
    precision = training["precision"]
    precision.setdefault("dims", [max(training["dims"])])
    precision.setdefault("schedules", singles)
    if precision["steps"] is not None and precision["steps"] > steps:
        raise TrainingConfigError(f"key 'training.precision.steps': {precision['steps']} is more than training.steps "
                                  f"= {steps}")
    for i, text in enumerate(precision["schedules"]):
        if text not in training["schedules"]:
            raise TrainingConfigError(f"key 'training.precision.schedules[{i}]': {text!r} is not in training.schedules")
    for i, dim in enumerate(precision["dims"]):
        if dim not in training["dims"]:
            raise TrainingConfigError(f"key 'training.precision.dims[{i}]': {dim} is not in training.dims")
    probe = training["probe"]
    stes = [t for t in singles if parse_schedule(t).is_single_ste]
    probe.setdefault("schedules", stes)
    for i, text in enumerate(probe["schedules"]):
        if text not in stes:
            raise TrainingConfigError(f"key 'training.probe.schedules[{i}]': {text!r} is not a single-STE schedule of "
                                      f"training.schedules ({stes})")
    probe.setdefault("estimators", list(default_estimators))
    check_names(probe["estimators"], "training.probe.estimators")
    for i, name in enumerate(probe["estimators"]):
        if name not in known_estimators:
            raise TrainingConfigError(f"key 'training.probe.estimators[{i}]': {name!r} is not in the estimators list "
                                      "(the probe along training runs the MLP probe's estimators)")
