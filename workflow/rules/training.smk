# The study along training: the probe's student trained with each schedule, per (schedule, dim) for
# every seed (one Python start-up per job), then tables, findings and figures.


rule training_run:
    input:
        code=estimator_code("training_run.py", estimators=schedule_estimators),
    output:
        curves=expand(
            "results/training/runs/{{schedule}}/dim{{dim}}/seed{seed}/curve.csv",
            seed=TRAINING["seeds"],
        ),
        snapshots=expand(
            "results/training/runs/{{schedule}}/dim{{dim}}/seed{seed}/snapshots.pt",
            seed=TRAINING["seeds"],
        ),
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
        curves=expand(
            "results/training/runs/{schedule}/dim{dim}/seed{seed}/curve.csv",
            schedule=TRAINING_SLUGS,
            dim=TRAINING["dims"],
            seed=TRAINING["seeds"],
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
        findings=report(
            "results/tables/findings_training.md",
            caption="../report/training.rst",
            category="Along training",
        ),
    log:
        "results/logs/training/tables.log",
    benchmark:
        "results/benchmarks/training/tables.tsv"
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
    conda:
        ENV
    script:
        "../scripts/training_figures.py"


rule training:
    """The study along training: curves, final losses with CIs, the switch findings, figures."""
    input:
        rules.training_tables.output,
        rules.training_figures.output,
