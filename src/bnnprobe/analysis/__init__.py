"""From gradient records to findings: lr grids, loss-decrease sweeps, tidy tables, figures (torch only in sweep)."""
