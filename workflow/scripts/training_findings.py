"""findings_training.md: the training study's findings, generated from its tables (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from bnnprobe.io import atomic_path  # noqa: E402
from bnnprobe.training.tables import (  # noqa: E402
    cosine_trend,
    findings_markdown,
    phase_findings_markdown,
    ste_rankings,
)

i = snakemake.input
text = findings_markdown(pd.read_csv(i.switches), pd.read_csv(i.final))
text += "\n" + phase_findings_markdown(cosine_trend(pd.read_csv(i.probe_runs)), ste_rankings(pd.read_csv(i.probe_best)))
with atomic_path(snakemake.output.findings) as tmp:
    Path(tmp).write_text(text)
