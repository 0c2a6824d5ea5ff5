# Tidy CSV tables from every sweep row.


rule probe_tables:
    input:
        sweeps=expand(
            "results/probe/sweeps/{grid}/{estimator}/dim{dim}.csv",
            grid=GRIDS,
            estimator=ESTIMATORS,
            dim=DIMS,
        ),
        code=library("tables.py"),
    output:
        runs="results/tables/probe_runs.csv",
        summary="results/tables/probe_summary.csv",
        best="results/tables/probe_best.csv",
    log:
        "results/logs/tables/probe.log",
    conda:
        "../../envs/tables.yaml"
    script:
        "../scripts/probe_tables.py"
