# The probe on one layer of each finetuned XNOR-ResNet: gradients, sweeps, tables, figures.


rule layerprobe_gradients:
    input:
        model=finetuned_model,
        data=f"results/data/{FT_DATASET}/tensors.pt",
        code=TRAIN_CODE + PROBLEM_CODE + library("layerprobe.py"),
        estimator_code=gradient_code,
    output:
        gradients="results/layerprobe/gradients/{run}/{estimator}/seed{seed}.pt",
    log:
        "results/logs/layerprobe/gradients/{run}/{estimator}/seed{seed}.log",
    benchmark:
        "results/benchmarks/layerprobe/gradients/{run}/{estimator}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=4000,
    params:
        settings=lambda wc: settings_for(wc.estimator, config),
        width=lambda wc: FINETUNE_RUNS[wc.run]["width"],
        probe={k: config["layerprobe"][k] for k in ("layer", "k", "batch_size")},
    script:
        "../scripts/layerprobe_gradients.py"


rule layerprobe_sweep:
    input:
        gradients=expand(
            "results/layerprobe/gradients/{{run}}/{{estimator}}/seed{seed}.pt",
            seed=LAYER_SEEDS,
        ),
        cdg=expand(
            "results/layerprobe/gradients/{{run}}/cdg/seed{seed}.pt", seed=LAYER_SEEDS
        ),
        model=finetuned_model,
        data=f"results/data/{FT_DATASET}/tensors.pt",
        code=library("layerprobe.py", "sweep.py", "lrgrid.py"),
    output:
        coarse="results/layerprobe/sweeps/coarse/{run}/{estimator}.csv",
        fine="results/layerprobe/sweeps/fine/{run}/{estimator}.csv",
        fine_grid="results/layerprobe/fine_grids/{run}/{estimator}.json",
    log:
        "results/logs/layerprobe/sweeps/{run}/{estimator}.log",
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    params:
        coarse_lrs=config["lr"]["coarse"],
        fine=config["lr"]["fine"],
        width=lambda wc: FINETUNE_RUNS[wc.run]["width"],
    script:
        "../scripts/layerprobe_sweep.py"


rule layerprobe_tables:
    input:
        sweeps=expand(
            "results/layerprobe/sweeps/{grid}/{run}/{estimator}.csv",
            grid=GRIDS,
            run=list(FINETUNE_RUNS),
            estimator=LAYER_ESTIMATORS,
        ),
        code=library("tables.py", "lrgrid.py", "figures.py", "layerprobe.py"),
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
        "results/logs/tables/layerprobe.log",
    conda:
        "../../envs/tables.yaml"
    params:
        runs=list(FINETUNE_RUNS.values()),
        panels=config["figures"]["panels"],
    script:
        "../scripts/layerprobe_tables.py"
