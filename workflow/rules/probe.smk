# The MLP probe: gradients per (estimator, dim, seed), then loss decreases over the lr grids.


rule probe_gradients:
    input:
        code=gradient_code,
    output:
        gradients="results/probe/gradients/{estimator}/dim{dim}/seed{seed}.pt",
    log:
        "results/logs/probe/gradients/{estimator}/dim{dim}/seed{seed}.log",
    benchmark:
        "results/benchmarks/probe/gradients/{estimator}/dim{dim}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=gradient_mem_mb,
        gpu=gpu_count,
    params:
        settings=lambda wc: settings_for(wc.estimator, config),
        problem=problem_params(),
        compute=compute_params(),
    script:
        "../scripts/probe_gradients.py"


rule probe_sweep:
    input:
        unpack(sweep_inputs),
    output:
        coarse="results/probe/sweeps/coarse/{estimator}/dim{dim}.csv",
        fine="results/probe/sweeps/fine/{estimator}/dim{dim}.csv",
        fine_grid="results/probe/fine_grids/{estimator}/dim{dim}.json",
    log:
        "results/logs/probe/sweeps/{estimator}/dim{dim}.log",
    benchmark:
        "results/benchmarks/probe/sweeps/{estimator}/dim{dim}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=gradient_mem_mb,
    params:
        coarse_lrs=config["lr"]["coarse"],
        fine=config["lr"]["fine"],
        compute=compute_params(),
    script:
        "../scripts/probe_sweep.py"
