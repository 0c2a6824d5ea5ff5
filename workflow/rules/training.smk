# The study along training: each estimator's lr tuned on its own seeds, the probe's student trained with
# each schedule (a job per schedule: every dim and seed), the same runs in float32 and float64, tables,
# findings, figures; and the one-step probe at snapshots of the single-STE runs.


rule training_tune:
    input:
        code=estimator_code("training_tune.py", estimators=lambda wc: [wc.estimator]),
    output:
        table=path("tuning"),
    log:
        "results/logs/training/tuning/{estimator}.log",
    benchmark:
        "results/benchmarks/training/tuning/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=gpu_count,
    params:
        dims=TRAINING["dims"],
        seeds=TRAINING["tuning"]["seeds"],
        budget=tuning_budget(),
        extensions=TRAINING["tuning"]["extend"],
        grid=tuning_grid,
        problem=training_problem(),
        settings=lambda wc: settings_for(wc.estimator, config),
        compute=training_compute(),
    script:
        "../scripts/training_tune.py"


# the first estimator of a switch trained on the tuning seeds to its convergence: where the second one is tuned
rule training_switch_points:
    input:
        tuning=path("tuning"),
        code=estimator_code(
            "training_switch_points.py", estimators=lambda wc: [wc.estimator]
        ),
    output:
        points=path("switch_points"),
    log:
        "results/logs/training/tuning/switch_points/{estimator}.log",
    benchmark:
        "results/benchmarks/training/tuning/switch_points/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=gpu_count,
    params:
        dims=TRAINING["dims"],
        seeds=TRAINING["tuning"]["seeds"],
        problem=training_problem(),
        protocol={**protocol(), "stationarity_batches": 0},
        settings=lambda wc: settings_for(wc.estimator, config),
        compute=training_compute(),
    script:
        "../scripts/training_switch_points.py"


# a switch's second estimator tuned at the switch point: from the first one's converged weights
rule training_switch_tune:
    input:
        points=lambda wc: path(
            "switch_points", estimator=SCHEDULES[schedule_from_slug(wc.schedule)].first
        ),
        code=estimator_code("training_tune.py", estimators=schedule_estimators),
    output:
        table=path("switch_tuning"),
    log:
        "results/logs/training/tuning/switches/{schedule}.log",
    benchmark:
        "results/benchmarks/training/tuning/switches/{schedule}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=training_run_gpus,
    params:
        dims=TRAINING["dims"],
        seeds=TRAINING["tuning"]["seeds"],
        budget=tuning_budget(),
        extensions=TRAINING["tuning"]["extend"],
        grid=tuning_grid,
        problem=training_problem(),
        estimator=lambda wc: SCHEDULES[schedule_from_slug(wc.schedule)].then,
        after=lambda wc: SCHEDULES[schedule_from_slug(wc.schedule)].first,
        settings=lambda wc: settings_for(
            SCHEDULES[schedule_from_slug(wc.schedule)].then, config
        ),
        compute=training_compute(),
    script:
        "../scripts/training_tune.py"


rule training_run:
    input:
        tuning=schedule_tuning,
        code=estimator_code("training_run.py", estimators=schedule_estimators),
    output:
        curves=path("training_run", file="curve.csv", **TRAINING_RUN_AXES),
        snapshots=path("training_run", file="snapshots.pt", **TRAINING_RUN_AXES),
    log:
        "results/logs/training/runs/{schedule}.log",
    benchmark:
        "results/benchmarks/training/runs/{schedule}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=training_run_gpus,
    params:
        specs=training_specs,
        lr=TRAINING["lr"],
        settings=training_settings,
        compute=training_compute(),
    script:
        "../scripts/training_run.py"


rule training_precision:
    input:
        tuning=schedule_tuning,
        code=estimator_code("training_precision.py", estimators=schedule_estimators),
    output:
        table="results/training/precision/{schedule}.csv",
    log:
        "results/logs/training/precision/{schedule}.log",
    benchmark:
        "results/benchmarks/training/precision/{schedule}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=training_run_gpus,
    params:
        specs=precision_specs,
        lr=TRAINING["lr"],
        settings=training_settings,
        compute=training_compute(),
    script:
        "../scripts/training_precision.py"


rule training_tables:
    input:
        curves=path(
            "training_run",
            schedule=TRAINING_SLUGS,
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            file="curve.csv",
        ),
        tuning=TUNING_TABLES,
        code=code("training_tables.py"),
    output:
        curves="results/tables/training_curves.csv",
        runs=report(
            "results/tables/training_runs.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        final=report(
            "results/tables/training_final.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        budgets="results/tables/training_budgets.csv",
        leaders="results/tables/training_budget_leaders.csv",
        comparisons=report(
            "results/tables/training_comparisons.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        lr=report(
            "results/tables/training_lr.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/tables.log",
    benchmark:
        "results/benchmarks/training/tables.tsv"
    localrule: True
    conda:
        ENV
    params:
        smooth=TRAINING["plateau"]["smooth"],
        controls=TRAINING["controls"],
    script:
        "../scripts/training_tables.py"


rule training_precision_table:
    input:
        tables=expand(
            "results/training/precision/{schedule}.csv", schedule=PRECISION_SLUGS
        ),
        code=code("training_precision_table.py"),
    output:
        table=report(
            "results/tables/training_precision.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/precision.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/training_precision_table.py"


rule training_figures:
    input:
        curves=rules.training_tables.output.curves,
        lr=rules.training_tables.output.lr,
        code=code("training_figures.py"),
    output:
        **TRAINING_LR_FIGURE,
        vs_step=report(
            "results/figures/training/val_loss_vs_step.png",
            caption="../report/training.rst",
            category="Along training",
        ),
        vs_cost=[
            report(
                f"results/figures/training/val_loss_vs_cost_dim{dim}.png",
                caption="../report/training.rst",
                category="Along training",
                labels={"figure": "validation loss vs cost", "num_dim": str(dim)},
            )
            for dim in TRAINING["dims"]
        ],
    log:
        "results/logs/training/figures.log",
    benchmark:
        "results/benchmarks/training/figures.tsv"
    localrule: True
    conda:
        ENV
    params:
        dims=TRAINING["dims"],
    script:
        "../scripts/training_figures.py"


rule training_probe_gradients:
    input:
        snapshots=path("training_run", file="snapshots.pt", **TRAINING_RUN_AXES),
        code=estimator_code("gradients.py", "phase"),
    output:
        records=path("phase_record", **PHASE_RECORD_AXES),
    log:
        "results/logs/training/probe/gradients/{schedule}/{estimator}.log",
    benchmark:
        "results/benchmarks/training/probe/gradients/{schedule}/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=gradient_mem_mb,
        gpu=gpu_count,
    params:
        source=PROBES["phase"].source,
        specs=phase_specs,
        settings=lambda wc: settings_for(wc.estimator, config),
        compute=compute_params(),
    script:
        "../scripts/gradients.py"


rule training_probe_sweep:
    input:
        gradients=path("phase_record", **PHASE_RECORD_AXES),
        cdg=path(
            "phase_record",
            estimator="cdg",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            phase=PROBED_PHASES,
        ),
        smoothed=path(
            "phase_record",
            estimator="smoothed",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            phase=PROBED_PHASES,
        ),
        snapshots=path("training_run", file="snapshots.pt", **TRAINING_RUN_AXES),
        code=code("sweeps.py", "phase"),
    output:
        coarse=path(
            "phase_sweep", grid="coarse", dim=TRAINING["dims"], phase=PROBED_PHASES
        ),
        fine=path("phase_sweep", grid="fine", dim=TRAINING["dims"], phase=PROBED_PHASES),
        fine_grid=path("phase_fine_grid", dim=TRAINING["dims"], phase=PROBED_PHASES),
    log:
        "results/logs/training/probe/sweeps/{schedule}/{estimator}.log",
    benchmark:
        "results/benchmarks/training/probe/sweeps/{schedule}/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=sweep_mem_mb,
    params:
        source=PROBES["phase"].source,
        groups=phase_groups,
        coarse_lrs=config["lr"]["coarse"],
        fine={**config["lr"]["fine"], **TRAINING["probe"]["fine"]},
        step_layers=config["probe"]["step_layers"],
        compute=compute_params(),
    script:
        "../scripts/sweeps.py"


rule training_probe_tables:
    input:
        sweeps=path(
            "phase_sweep",
            grid=GRIDS,
            schedule=PHASE_SLUGS,
            estimator=PHASE_ESTIMATORS,
            dim=TRAINING["dims"],
            phase=PROBED_PHASES,
        ),
        code=code("tables.py"),
    output:
        runs="results/tables/training_probe_runs.csv",
        summary=report(
            "results/tables/training_probe_summary.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        best=report(
            "results/tables/training_probe_best.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        crossfit=report(
            "results/tables/training_probe_crossfit.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/probe/tables.log",
    benchmark:
        "results/benchmarks/training/probe/tables.tsv"
    localrule: True
    conda:
        ENV
    params:
        probe="phase",
        reference_values=reference_values(config, PHASE_ESTIMATORS),
    script:
        "../scripts/tables.py"


rule training_probe_figures:
    input:
        runs=rules.training_probe_tables.output.runs,
        code=code("training_probe_figures.py"),
    output:
        figure=report(
            "results/figures/training/phase_probe_{schedule}.png",
            caption="../report/training.rst",
            category="Along training",
            labels={
                "figure": "one-step probe along training",
                "schedule": "{schedule}",
            },
        ),
    log:
        "results/logs/training/probe/figures_{schedule}.log",
    localrule: True
    conda:
        ENV
    params:
        schedule=lambda wc: schedule_from_slug(wc.schedule),
    script:
        "../scripts/training_probe_figures.py"


rule training_findings:
    input:
        runs=rules.training_tables.output.runs,
        final=rules.training_tables.output.final,
        comparisons=rules.training_tables.output.comparisons,
        leaders=rules.training_tables.output.leaders,
        lr=rules.training_tables.output.lr,
        precision=rules.training_precision_table.output.table if PRECISION_SLUGS else [],
        probe_runs=rules.training_probe_tables.output.runs,
        probe_best=rules.training_probe_tables.output.best,
        probe_crossfit=rules.training_probe_tables.output.crossfit,
        code=code("training_findings.py"),
    output:
        trend=report(
            "results/tables/training_probe_trend.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        converged=report(
            "results/tables/training_probe_converged.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        findings=report(
            "results/tables/findings_training.md",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/findings.log",
    localrule: True
    conda:
        ENV
    params:
        protocol={
            **TRAINING["plateau"],
            "factor": TRAINING["decay"]["factor"],
            "reductions": TRAINING["decay"]["reductions"],
        },
    script:
        "../scripts/training_findings.py"


# The study along training: lrs, curves, runs, comparisons at equal cost, the probe along training,
# findings, figures.
rule training:
    input:
        rules.training_tables.output,
        rules.training_figures.output,
        rules.training_probe_tables.output,
        rules.training_findings.output,
        rules.training_precision_table.output if PRECISION_SLUGS else [],
        expand(rules.training_probe_figures.output, schedule=PHASE_SLUGS),
    localrule: True
