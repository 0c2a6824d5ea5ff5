# The MLP probe: gradient records and lr sweeps per estimator instance for every dim and seed, tables
# and figures. One Python start-up per job costs ~3.5 s (import torch): jobs are sized so that a laptop
# run is not mostly start-up, while a changed setting still re-runs only the estimators it touches.


MLP_GRADIENTS = PLAN.jobs("mlp")
MLP_SWEEPS = PLAN.jobs("mlp", "sweeps")


rule probe_gradients:
    input:
        code=estimator_code(
            "gradients.py", job_families(MLP_GRADIENTS, "estimator"), "mlp"
        ),
    output:
        records=path("probe_record", **MLP_RECORD_AXES),
    log:
        "results/logs/probe/gradients/{estimator}.log",
    benchmark:
        "results/benchmarks/probe/gradients/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=mlp_mem_mb,
        gpu=gpu(MLP_GRADIENTS, "estimator"),
    params:
        job=job_of(MLP_GRADIENTS, "estimator"),
    script:
        "../scripts/gradients.py"


rule probe_sweep:
    input:
        unpack(lambda wc: MLP_SWEEPS[wc.estimator].inputs()),
        code=code("sweeps.py", "mlp"),
    output:
        coarse=path("probe_sweep", grid="coarse", dim=DIMS),
        fine=path("probe_sweep", grid="fine", dim=DIMS),
        fine_grid=path("probe_fine_grid", dim=DIMS),
    log:
        "results/logs/probe/sweeps/{estimator}.log",
    benchmark:
        "results/benchmarks/probe/sweeps/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=mlp_mem_mb,
    params:
        job=job_of(MLP_SWEEPS, "estimator"),
    script:
        "../scripts/sweeps.py"


rule probe_tables:
    input:
        sweeps=path("probe_sweep", grid=GRIDS, estimator=MLP_INSTANCES, dim=DIMS),
        code=code("tables.py"),
    output:
        runs="results/tables/probe_runs.csv",
        summary=report(
            "results/tables/probe_summary.csv",
            caption="../report/probe_tables.rst",
            category="Probe study",
            subcategory="Tables",
        ),
        best=report(
            "results/tables/probe_best.csv",
            caption="../report/probe_tables.rst",
            category="Probe study",
            subcategory="Tables",
        ),
        crossfit=report(
            "results/tables/probe_crossfit.csv",
            caption="../report/probe_tables.rst",
            category="Probe study",
            subcategory="Tables",
        ),
    log:
        "results/logs/probe/tables.log",
    benchmark:
        "results/benchmarks/probe/tables.tsv"
    localrule: True
    conda:
        ENV
    params:
        probe="mlp",
        reference_values=PLAN.reference_values(PLAN.mlp_instances),
    script:
        "../scripts/tables.py"


rule probe_figures:
    input:
        runs=rules.probe_tables.output.runs,
        summary=rules.probe_tables.output.summary,
        best=rules.probe_tables.output.best,
        code=code("probe_figures.py"),
    output:
        quick_check=report(
            "results/figures/probe/quick_check.png",
            caption="../report/quick_check.rst",
            category="Probe study",
            subcategory="Figures",
        ),
        best_vs_dim=report(
            "results/figures/probe/best_vs_dim.png",
            caption="../report/best_vs_dim.rst",
            category="Probe study",
            subcategory="Figures",
        ),
        cosine_vs_dim=report(
            "results/figures/probe/cosine_vs_dim.png",
            caption="../report/cosine_vs_dim.rst",
            category="Probe study",
            subcategory="Figures",
        ),
        best_per_layer=report(
            "results/figures/probe/best_per_layer.png",
            caption="../report/best_per_layer.rst",
            category="Probe study",
            subcategory="Figures",
        ),
        sigma_eps=report(
            "results/figures/probe/sigma_eps.png",
            caption="../report/sigma_eps.rst",
            category="Probe study",
            subcategory="Figures",
        ),
    log:
        "results/logs/probe/figures.log",
    benchmark:
        "results/benchmarks/probe/figures.tsv"
    localrule: True
    conda:
        ENV
    params:
        panels=config["figures"]["panels"],
        quick_check_lr=config["lr"]["quick_check"],
    script:
        "../scripts/probe_figures.py"


rule probe_lr_curves:
    input:
        summary=rules.probe_tables.output.summary,
        code=code("probe_lr_curves.py"),
    output:
        figures=[
            report(
                f"results/figures/probe/lr_curves_dim{dim}.png",
                caption="../report/lr_curves.rst",
                category="Probe study",
                subcategory="Loss decrease vs lr",
                labels={"figure": "loss decrease vs lr", "num_dim": str(dim)},
            )
            for dim in DIMS
        ],
    log:
        "results/logs/probe/lr_curves.log",
    localrule: True
    conda:
        ENV
    params:
        panels=config["figures"]["panels"],
        dims=DIMS,
    script:
        "../scripts/probe_lr_curves.py"


rule probe_findings:
    input:
        crossfit=rules.probe_tables.output.crossfit,
        best=rules.probe_tables.output.best,
        code=code("probe_findings.py"),
    output:
        layers=report(
            "results/tables/probe_layers.csv",
            caption="../report/probe_findings.rst",
            category="Probe study",
            subcategory="Tables",
        ),
        sigma_eps=report(
            "results/tables/probe_sigma_eps.csv",
            caption="../report/probe_findings.rst",
            category="Probe study",
            subcategory="Tables",
        ),
        findings=report(
            "results/tables/findings_probe.md",
            caption="../report/probe_findings.rst",
            category="Probe study",
            subcategory="Findings",
        ),
    log:
        "results/logs/probe/findings.log",
    benchmark:
        "results/benchmarks/probe/findings.tsv"
    localrule: True
    conda:
        ENV
    script:
        "../scripts/probe_findings.py"


# The MLP probe study: tables, findings and figures.
rule probe:
    input:
        rules.probe_tables.output,
        rules.probe_findings.output,
        rules.probe_figures.output,
        rules.probe_lr_curves.output,
    localrule: True
