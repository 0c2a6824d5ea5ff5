# XNOR-ResNet-18 finetunes: full-precision pretrain per width, XNOR finetune per run, the log's table.


rule finetune_pretrain:
    input:
        data=PATHS["data"],
        code=code("finetune_train.py"),
    output:
        model=path("pretrained", file="model.pt"),
        metrics=path("pretrained", file="metrics.csv"),
    log:
        "results/logs/finetune/pretrain/{dataset}/w{width}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/pretrain/{dataset}/w{width}/seed{seed}.tsv"
    conda:
        ENV
    threads: config["compute"]["threads"]
    resources:
        gpu=training_gpus,
        mem_mb=job_mem_mb(config, "finetune"),
    params:
        job=job_of(PLAN.pretrain, "dataset", "width", "seed"),
    script:
        "../scripts/finetune_train.py"


# the XNOR version of a run, from the full-precision model of its width
use rule finetune_pretrain as finetune_xnor with:
    input:
        data=PATHS["data"],
        pretrained=lambda wc: PLAN.xnor[wc.dataset, wc.run, wc.seed].pretrained,
        code=code("finetune_train.py"),
    output:
        model=path("finetuned", file="model.pt"),
        metrics=path("finetuned", file="metrics.csv"),
    log:
        "results/logs/finetune/xnor/{dataset}/{run}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/xnor/{dataset}/{run}/seed{seed}.tsv"
    params:
        job=job_of(PLAN.xnor, "dataset", "run", "seed"),


rule finetune_table:
    input:
        metrics=path(
            "finetuned",
            dataset=FT_DATASET,
            run=list(FINETUNE_RUNS),
            seed=config["finetune"]["seeds"],
            file="metrics.csv",
        ),
        code=code("finetune_table.py"),
    output:
        table=report(
            "results/tables/finetune.csv",
            caption="../report/finetune.rst",
            category="Finetunes",
        ),
        markdown="results/tables/finetune.md",
    log:
        "results/logs/finetune/table.log",
    benchmark:
        "results/benchmarks/finetune/table.tsv"
    localrule: True
    conda:
        ENV
    params:
        runs=list(FINETUNE_RUNS.values()),
        seeds=config["finetune"]["seeds"],
        dataset=config["finetune"]["dataset"],
        last_epochs=config["finetune"]["last_epochs"],
    script:
        "../scripts/finetune_table.py"


rule finetune_figures:
    input:
        metrics=rules.finetune_table.input.metrics,
        code=code("finetune_figures.py"),
    output:
        curves=report(
            "results/figures/finetune/curves.png",
            caption="../report/finetune.rst",
            category="Finetunes",
        ),
    log:
        "results/logs/finetune/figures.log",
    benchmark:
        "results/benchmarks/finetune/figures.tsv"
    localrule: True
    conda:
        ENV
    params:
        runs=list(FINETUNE_RUNS.values()),
        seeds=config["finetune"]["seeds"],
    script:
        "../scripts/finetune_figures.py"


# The XNOR-ResNet-18 finetunes: the log's table and the training curves.
rule finetune:
    input:
        rules.finetune_table.output,
        rules.finetune_figures.output,
    localrule: True
