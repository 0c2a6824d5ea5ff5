"""The columns of a training run's curve (torch-free: the table jobs read them, the training jobs write them)."""

# one row per evaluation
CURVE_COLUMNS = ["step", "segment", "estimator", "step_size", "train_loss", "val_loss", "test_loss",
                 "cumulative_loss_evals", "cumulative_cost", "seconds", "sigma_median", "sigma_min", "sigma_max"]
# a run's constants, repeated on every row of its curve
RUN_COLUMNS = ["schedule", "dim", "seed", "lr", "lr_then", "converged_step", "switch_step", "then_converged_step",
               "end_step", "finished", "decay_steps", "expected_grad_norm_init", "expected_grad_norm_converged",
               "expected_grad_ratio", "expected_grad_sem_ratio", "val_noise_rel", "machine"]
