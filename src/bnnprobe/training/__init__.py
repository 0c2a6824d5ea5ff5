"""The study along training: the student trained from the probe's initialisation with any estimator
(or a switch from one to another near a plateau), its curves, and the one-step probe at checkpoints."""
