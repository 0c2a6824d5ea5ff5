# XNOR-ResNet-18 finetunes: full-precision pretrain per width, XNOR finetune per run, the log's table.


rule finetune_pretrain:
    input:
        data="results/data/{dataset}/tensors.pt",
        code=TRAIN_CODE,
    output:
        model="results/finetune/pretrain/{dataset}/w{width}/seed{seed}/model.pt",
        metrics="results/finetune/pretrain/{dataset}/w{width}/seed{seed}/metrics.csv",
    log:
        "results/logs/finetune/pretrain/{dataset}/w{width}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/pretrain/{dataset}/w{width}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    resources:
        gpu=training_gpus,
        mem_mb=8000,
    params:
        settings=config["finetune"]["pretrain"],
        device=config["compute"]["device"],
    script:
        "../scripts/finetune_train.py"


rule finetune_xnor:
    input:
        data="results/data/{dataset}/tensors.pt",
        pretrained=pretrained_model,
        code=TRAIN_CODE,
    output:
        model="results/finetune/xnor/{dataset}/{run}/seed{seed}/model.pt",
        metrics="results/finetune/xnor/{dataset}/{run}/seed{seed}/metrics.csv",
    log:
        "results/logs/finetune/xnor/{dataset}/{run}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/xnor/{dataset}/{run}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["compute"]["threads"]
    resources:
        gpu=training_gpus,
        mem_mb=8000,
    params:
        settings=lambda wc: FINETUNE_RUNS[wc.run],
        device=config["compute"]["device"],
    script:
        "../scripts/finetune_train.py"


rule finetune_table:
    input:
        metrics=expand(
            "results/finetune/xnor/{dataset}/{run}/seed{seed}/metrics.csv",
            dataset=config["finetune"]["dataset"],
            run=list(FINETUNE_RUNS),
            seed=config["finetune"]["seeds"],
        ),
        code=library("finetune.py"),
    output:
        table=report(
            "results/tables/finetune.csv",
            caption="../report/finetune.rst",
            category="Finetunes",
        ),
        markdown="results/tables/finetune.md",
        curves=report(
            "results/figures/finetune/curves.png",
            caption="../report/finetune.rst",
            category="Finetunes",
        ),
    log:
        "results/logs/tables/finetune.log",
    conda:
        "../../envs/tables.yaml"
    params:
        runs=list(FINETUNE_RUNS.values()),
        seeds=config["finetune"]["seeds"],
        dataset=config["finetune"]["dataset"],
        last_epochs=config["finetune"]["last_epochs"],
    script:
        "../scripts/finetune_table.py"
