"""Every `snakemake` command the README shows works as written (as a dry run where it would run jobs)."""

import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from test_workflow import copy_repo

pytestmark = pytest.mark.workflow

COMMANDS = sorted({c for c in re.findall(r"`(snakemake [^`]*)`", (REPO / "README.md").read_text())
                   if "..." not in c})  # "..." marks a placeholder in prose
# run for real elsewhere, with the tiny config: the report after a complete run (test_workflow)
ELSEWHERE = {"--report": "test_workflow.py::test_html_report_bundles_every_figure_and_table"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("readme") / "repo")


def test_the_readme_shows_the_commands_users_need():
    joined = "\n".join(COMMANDS)
    for needed in ("workflow/presets/quick.yaml", "--profile workflow/profiles/slurm", "--unlock", "--report",
                   "--dry-run"):
        assert needed in joined


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_as_written(repo, command):
    args = shlex.split(command)[1:]
    for flag, test in ELSEWHERE.items():
        if flag in args:
            pytest.skip(f"needs a finished run: {test} runs it")
    if "--sdm" in args and shutil.which("conda") is None:
        pytest.skip("conda is not installed here")
    if not {"--unlock", "--lint", "--dry-run"} & set(args):
        args.insert(0, "--dry-run")
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo, capture_output=True, text=True,
                            timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for target in [a for a in args if a.startswith("results/")]:  # a target stays a target: its job is planned
        assert f"output: {target}" in output, output[-3000:]
