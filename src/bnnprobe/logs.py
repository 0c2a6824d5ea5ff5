"""Logging for workflow scripts: everything, tracebacks included, goes to the job's log file."""

from __future__ import annotations

import logging
import sys


def to_file(path: str) -> None:
    stream = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
