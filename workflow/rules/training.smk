# The study along training: each estimator's lr tuned on its own seeds, the probe's student trained with
# each schedule (a job per schedule: every dim and seed), the same runs in float32 and float64, tables,
# findings, figures; and the one-step probe at snapshots of the single-STE runs.


rule training_tune:
    input:
        code=estimator_code("training_tune.py", job_families(PLAN.tuning, "estimator")),
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
        gpu=gpu(PLAN.tuning, "estimator"),
    params:
        job=job_of(PLAN.tuning, "estimator"),
    script:
        "../scripts/training_tune.py"


# a switch's second estimator tuned at the switch point: from the first one's converged weights
use rule training_tune as training_switch_tune with:
    input:
        points=lambda wc: PLAN.switch_tuning[wc.schedule].points,
        code=estimator_code(
            "training_tune.py", job_families(PLAN.switch_tuning, "schedule")
        ),
    output:
        table=path("switch_tuning"),
    log:
        "results/logs/training/tuning/switches/{schedule}.log",
    benchmark:
        "results/benchmarks/training/tuning/switches/{schedule}.tsv"
    resources:
        mem_mb=training_mem_mb,
        gpu=gpu(PLAN.switch_tuning, "schedule"),
    params:
        job=job_of(PLAN.switch_tuning, "schedule"),


# the first estimator of a switch trained on the tuning seeds to its convergence: where the second one is tuned
rule training_switch_points:
    input:
        tuning=lambda wc: PLAN.switch_points[wc.estimator].tuning or [],
        code=estimator_code(
            "training_switch_points.py", job_families(PLAN.switch_points, "estimator")
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
        gpu=gpu(PLAN.switch_points, "estimator"),
    params:
        job=job_of(PLAN.switch_points, "estimator"),
    script:
        "../scripts/training_switch_points.py"


rule training_run:
    input:
        tuning=lambda wc: PLAN.training[wc.schedule].tuning,
        # a switch starts from its first estimator's own run where that converged
        handoffs=lambda wc: PLAN.training[wc.schedule].handoffs,
        code=estimator_code("training_run.py", job_families(PLAN.training, "schedule")),
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
        gpu=gpu(PLAN.training, "schedule"),
    params:
        job=job_of(PLAN.training, "schedule"),
    script:
        "../scripts/training_run.py"


# the first seed of a schedule in float32 and float64, for the same steps at the same lr
use rule training_run as training_precision with:
    input:
        tuning=lambda wc: PLAN.precision[wc.schedule].tuning,
        handoffs=[],
        code=estimator_code("training_run.py", job_families(PLAN.precision, "schedule")),
    output:
        table=path("precision"),
    log:
        "results/logs/training/precision/{schedule}.log",
    benchmark:
        "results/benchmarks/training/precision/{schedule}.tsv"
    params:
        job=job_of(PLAN.precision, "schedule"),


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
        tables=path("precision", schedule=PRECISION_SLUGS),
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


PHASE_GRADIENTS = PLAN.jobs("phase")
PHASE_SWEEPS = PLAN.jobs("phase", "sweeps")


rule training_probe_gradients:
    input:
        needs=lambda wc: PHASE_GRADIENTS[wc.schedule, wc.estimator].needs,
        code=estimator_code(
            "gradients.py",
            job_families(PHASE_GRADIENTS, "schedule", "estimator"),
            "phase",
        ),
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
        mem_mb=mlp_mem_mb,
        gpu=gpu(PHASE_GRADIENTS, "schedule", "estimator"),
    params:
        job=job_of(PHASE_GRADIENTS, "schedule", "estimator"),
    script:
        "../scripts/gradients.py"


rule training_probe_sweep:
    input:
        unpack(lambda wc: PHASE_SWEEPS[wc.schedule, wc.estimator].inputs()),
        code=code("sweeps.py", "phase"),
    output:
        coarse=path(
            "phase_sweep", grid="coarse", dim=TRAINING["dims"], phase=list(PHASES)
        ),
        fine=path("phase_sweep", grid="fine", dim=TRAINING["dims"], phase=list(PHASES)),
        fine_grid=path("phase_fine_grid", dim=TRAINING["dims"], phase=list(PHASES)),
    log:
        "results/logs/training/probe/sweeps/{schedule}/{estimator}.log",
    benchmark:
        "results/benchmarks/training/probe/sweeps/{schedule}/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=mlp_mem_mb,
    params:
        job=job_of(PHASE_SWEEPS, "schedule", "estimator"),
    script:
        "../scripts/sweeps.py"


rule training_probe_tables:
    input:
        sweeps=path(
            "phase_sweep",
            grid=GRIDS,
            schedule=PHASE_SLUGS,
            estimator=PHASE_INSTANCES,
            dim=TRAINING["dims"],
            phase=list(PHASES),
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
        reference_values=PLAN.reference_values(PLAN.phase_instances),
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
        schedule=lambda wc: PLAN.schedules[wc.schedule].name,
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
