# The study along training: the probe's student trained with each schedule, per (schedule, dim) for
# every seed (one Python start-up per job), then tables, findings and figures.


rule training_run:
    input:
        code=estimator_code("training_run.py", estimators=schedule_estimators),
    output:
        curves=path("training_run", seed=TRAINING["seeds"], file="curve.csv"),
        snapshots=path("training_run", seed=TRAINING["seeds"], file="snapshots.pt"),
    log:
        "results/logs/training/runs/{schedule}/dim{dim}.log",
    benchmark:
        "results/benchmarks/training/runs/{schedule}/dim{dim}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        gpu=training_run_gpus,
    params:
        specs=training_specs,
        settings=training_settings,
        compute=compute_params(),
    script:
        "../scripts/training_run.py"


rule training_tables:
    input:
        curves=path(
            "training_run",
            schedule=TRAINING_SLUGS,
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            file="curve.csv",
        ),
        code=code("training_tables.py"),
    output:
        curves=report(
            "results/tables/training_curves.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        final=report(
            "results/tables/training_final.csv",
            caption="../report/training.rst",
            category="Along training",
        ),
        switches=report(
            "results/tables/training_switches.csv",
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
    script:
        "../scripts/training_tables.py"


rule training_figures:
    input:
        curves=rules.training_tables.output.curves,
        code=code("training_figures.py"),
    output:
        vs_step=report(
            "results/figures/training/val_loss_vs_step.png",
            caption="../report/training.rst",
            category="Along training",
        ),
        vs_evals=report(
            "results/figures/training/val_loss_vs_loss_evals.png",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/figures.log",
    benchmark:
        "results/benchmarks/training/figures.tsv"
    localrule: True
    conda:
        ENV
    script:
        "../scripts/training_figures.py"


rule training_probe_gradients:
    input:
        snapshots=path(
            "training_run",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            file="snapshots.pt",
        ),
        code=estimator_code("gradients.py", "phase"),
    output:
        records=path(
            "phase_record",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            phase=PROBED_PHASES,
        ),
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
        gradients=path(
            "phase_record",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            phase=PROBED_PHASES,
        ),
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
        snapshots=path(
            "training_run",
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
            file="snapshots.pt",
        ),
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
        fine=config["lr"]["fine"],
        step_layers=["all"],
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
        init_sweeps=path(
            "probe_sweep",
            grid=GRIDS,
            estimator=[reference_instance(name, config) for name in PHASE_ESTIMATORS],
            dim=TRAINING["dims"],
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
        init_schedules=TRAINING["probe"]["schedules"],
        init_seeds=TRAINING["seeds"],
    script:
        "../scripts/tables.py"


rule training_probe_figures:
    input:
        runs=rules.training_probe_tables.output.runs,
        best=rules.training_probe_tables.output.best,
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
        phases=list(PHASES),
    script:
        "../scripts/training_probe_figures.py"


rule training_findings:
    input:
        switches=rules.training_tables.output.switches,
        final=rules.training_tables.output.final,
        probe_runs=rules.training_probe_tables.output.runs,
        probe_best=rules.training_probe_tables.output.best,
        code=code("training_findings.py"),
    output:
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
    script:
        "../scripts/training_findings.py"


# The study along training: curves, final losses with CIs, the probe along training, findings, figures.
rule training:
    input:
        rules.training_tables.output,
        rules.training_figures.output,
        rules.training_probe_tables.output,
        rules.training_findings.output,
        expand(rules.training_probe_figures.output, schedule=PHASE_SLUGS),
    localrule: True
