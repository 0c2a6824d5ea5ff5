# Data sets for the finetunes: verified downloads (or archives already on disk) and tensor caches.
# Downloads run on the submitting host (cluster compute nodes are often offline).


rule data_cifar10_archive:
    output:
        archive="results/data/cifar10/cifar-10-python.tar.gz",
    log:
        "results/logs/data/cifar10_archive.log",
    localrule: True
    conda:
        ENV
    params:
        url=config["data"]["cifar10"]["url"],
        md5=config["data"]["cifar10"]["md5"],
        offline_file=config["data"]["cifar10"]["archive"],
        offline_option="data.cifar10.archive",
    script:
        "../scripts/data_fetch.py"


rule data_ucm_archive:
    output:
        archive="results/data/ucm/UCMerced_LandUse.zip",
    log:
        "results/logs/data/ucm_archive.log",
    localrule: True
    conda:
        ENV
    params:
        url=config["data"]["ucm"]["url"],
        md5=config["data"]["ucm"]["md5"],
        offline_file=config["data"]["ucm"]["archive"],
        offline_option="data.ucm.archive",
    script:
        "../scripts/data_fetch.py"


rule data_ucm_split:
    output:
        archive="results/data/ucm/uc_merced-{split}.txt",
    log:
        "results/logs/data/ucm_split_{split}.log",
    localrule: True
    conda:
        ENV
    params:
        url=lambda wc: config["data"]["ucm"]["splits_url"].format(split=wc.split),
        md5=lambda wc: config["data"]["ucm"]["splits_md5"][wc.split],
        offline_file=ucm_offline_split,
        offline_option="data.ucm.splits_dir",
    script:
        "../scripts/data_fetch.py"


rule data_cache:
    input:
        unpack(data_cache_inputs),
        code=code("data_cache.py"),
    output:
        tensors=PATHS["data"],
    log:
        "results/logs/data/{dataset}_cache.log",
    benchmark:
        "results/benchmarks/data/{dataset}_cache.tsv"
    conda:
        ENV
    resources:
        mem_mb=job_mem_mb(config, "data"),
    params:
        settings=lambda wc: data_cache_settings(wc.dataset),
        split_names=UCM_SPLITS,
    script:
        "../scripts/data_cache.py"
