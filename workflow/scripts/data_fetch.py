"""Download one archive by URL (or copy the one the config points at) and verify its md5."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.finetune.data import fetch  # noqa: E402

p = snakemake.params
fetch(p.url, p.md5, snakemake.output.archive, offline_file=p.offline_file, offline_option=p.offline_option)
