# The layer probe: the same study layer as the MLP probe (gradients.py, sweeps.py, tables.py) on K
# sampled weights of one layer of each finetuned XNOR-ResNet.


LAYER_GRADIENTS = PLAN.jobs("layer")
LAYER_SWEEPS = PLAN.jobs("layer", "sweeps")


rule layerprobe_gradients:
    input:
        needs=lambda wc: LAYER_GRADIENTS[wc.estimator].needs,
        code=estimator_code(
            "gradients.py", job_families(LAYER_GRADIENTS, "estimator"), "layer"
        ),
    output:
        records=path("layer_record", **LAYER_RECORD_AXES),
    log:
        "results/logs/layerprobe/gradients/{estimator}.log",
    benchmark:
        "results/benchmarks/layerprobe/gradients/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=layer_mem_mb,
        gpu=gpu(LAYER_GRADIENTS, "estimator"),
    params:
        job=job_of(LAYER_GRADIENTS, "estimator"),
    script:
        "../scripts/gradients.py"


rule layerprobe_sweep:
    input:
        unpack(lambda wc: LAYER_SWEEPS[wc.estimator].inputs()),
        code=code("sweeps.py", "layer"),
    output:
        coarse=path("layer_sweep", grid="coarse", run=list(FINETUNE_RUNS)),
        fine=path("layer_sweep", grid="fine", run=list(FINETUNE_RUNS)),
        fine_grid=path("layer_fine_grid", run=list(FINETUNE_RUNS)),
    log:
        "results/logs/layerprobe/sweeps/{estimator}.log",
    benchmark:
        "results/benchmarks/layerprobe/sweeps/{estimator}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        mem_mb=layer_mem_mb,
    params:
        job=job_of(LAYER_SWEEPS, "estimator"),
    script:
        "../scripts/sweeps.py"


rule layerprobe_tables:
    input:
        sweeps=path(
            "layer_sweep",
            grid=GRIDS,
            run=list(FINETUNE_RUNS),
            estimator=LAYER_INSTANCES,
        ),
        code=code("tables.py"),
    output:
        runs="results/tables/layerprobe_runs.csv",
        summary=report(
            "results/tables/layerprobe_summary.csv",
            caption="../report/layerprobe.rst",
            category="Layer probe",
        ),
        best=report(
            "results/tables/layerprobe_best.csv",
            caption="../report/layerprobe.rst",
            category="Layer probe",
        ),
        crossfit=report(
            "results/tables/layerprobe_crossfit.csv",
            caption="../report/layerprobe.rst",
            category="Layer probe",
        ),
    log:
        "results/logs/layerprobe/tables.log",
    benchmark:
        "results/benchmarks/layerprobe/tables.tsv"
    localrule: True
    conda:
        ENV
    params:
        probe="layer",
        reference_values=PLAN.reference_values(PLAN.layer_instances),
    script:
        "../scripts/tables.py"


rule layerprobe_figures:
    input:
        summary=rules.layerprobe_tables.output.summary,
        best=rules.layerprobe_tables.output.best,
        code=code("layerprobe_figures.py"),
    output:
        lr_curves=report(
            "results/figures/layerprobe/lr_curves.png",
            caption="../report/layerprobe.rst",
            category="Layer probe",
        ),
        best_vs_hyperparameter=report(
            "results/figures/layerprobe/best_vs_hyperparameter.png",
            caption="../report/layerprobe.rst",
            category="Layer probe",
        ),
    log:
        "results/logs/layerprobe/figures.log",
    benchmark:
        "results/benchmarks/layerprobe/figures.tsv"
    localrule: True
    conda:
        ENV
    params:
        runs=list(FINETUNE_RUNS.values()),
        panels=config["figures"]["panels"],
    script:
        "../scripts/layerprobe_figures.py"


# The layer probe on every finetuned XNOR-ResNet: tables and figures.
rule layerprobe:
    input:
        rules.layerprobe_tables.output,
        rules.layerprobe_figures.output,
    localrule: True
