"""finetune.csv / finetune.md: means over the last epochs of each (run, seed) (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from bnnprobe.finetune.runs import finetune_table, table_markdown  # noqa: E402
from bnnprobe.io import atomic_path, save_csv  # noqa: E402

p = snakemake.params
frames = []
paths = iter(snakemake.input.metrics)
for run in p.runs:
    for seed in p.seeds:
        frames.append((dict(run), seed, pd.read_csv(next(paths))))
table = finetune_table(frames, p.last_epochs, p.dataset)
save_csv(table, snakemake.output.table)
with atomic_path(snakemake.output.markdown) as tmp:
    Path(tmp).write_text(table_markdown(table))
