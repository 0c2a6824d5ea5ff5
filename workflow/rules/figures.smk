# Figures of the probe study, drawn from the tables.


rule probe_figures:
    input:
        runs=rules.probe_tables.output.runs,
        summary=rules.probe_tables.output.summary,
        best=rules.probe_tables.output.best,
        code=library("figures.py"),
    output:
        quick_check="results/figures/probe/quick_check.png",
        lr_curves=expand("results/figures/probe/lr_curves_dim{dim}.png", dim=DIMS),
        best_vs_dim="results/figures/probe/best_vs_dim.png",
        cosine_vs_dim="results/figures/probe/cosine_vs_dim.png",
    log:
        "results/logs/figures/probe.log",
    conda:
        "../../envs/tables.yaml"
    params:
        panels=config["figures"]["panels"],
        quick_check_lr=config["lr"]["quick_check"],
        dims=DIMS,
    script:
        "../scripts/probe_figures.py"
