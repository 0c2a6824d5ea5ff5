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
    if training["eval_every"] > training["steps"]:
        raise TrainingConfigError(f"key 'training.eval_every': {training['eval_every']} is more than training.steps = "
                                  f"{training['steps']}: a run would be evaluated only at its start and end")
    if training["switch_at"] is not None and training["switch_at"] >= training["steps"]:
        raise TrainingConfigError(f"key 'training.switch_at': {training['switch_at']} is not below training.steps = "
                                  f"{training['steps']}")
    for i, text in enumerate(training["controls"]):
        if text not in training["schedules"] or not parse_schedule(text).switches:
            raise TrainingConfigError(f"key 'training.controls[{i}]': {text!r} is not a switch of training.schedules")
    overlap = sorted(set(training["tuning"]["seeds"]) & set(training["seeds"]))
    if overlap and training["lr"] == "auto":
        raise TrainingConfigError(f"key 'training.tuning.seeds': {overlap} are also training.seeds; the lr must be "
                                  "tuned on seeds disjoint from the reported ones")
    singles = [t for t in training["schedules"] if not parse_schedule(t).switches]
    precision = training["precision"]
    precision.setdefault("dims", [max(training["dims"])])
    precision.setdefault("schedules", singles)
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
