# Figures of the probe study, drawn from the tables.


rule probe_figures:
    input:
        runs=rules.probe_tables.output.runs,
        summary=rules.probe_tables.output.summary,
        best=rules.probe_tables.output.best,
        code=library("figures.py"),
    output:
        quick_check=report(
            "results/figures/probe/quick_check.png",
            caption="../report/quick_check.rst",
            category="Probe study",
            subcategory="Figures",
        ),
        lr_curves=report(
            expand("results/figures/probe/lr_curves_dim{dim}.png", dim=DIMS),
            caption="../report/lr_curves.rst",
            category="Probe study",
            subcategory="Loss decrease vs lr",
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
