# Tidy CSV tables from every sweep row.


rule probe_tables:
    input:
        sweeps=expand(
            "results/probe/sweeps/{grid}/{estimator}/dim{dim}.csv",
            grid=GRIDS,
            estimator=ESTIMATORS,
            dim=DIMS,
        ),
        code=library("tables.py", "lrgrid.py"),
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
    log:
        "results/logs/tables/probe.log",
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/probe_tables.py"
