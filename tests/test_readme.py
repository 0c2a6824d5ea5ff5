"""Every `snakemake` command the README and docs/ show works as written (as a dry run where it would run
jobs), and every link between them points to a file that exists."""

import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from test_workflow import copy_repo

pytestmark = pytest.mark.workflow

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = sorted({" ".join(c.split()) for doc in DOCS for c in re.findall(r"`(snakemake [^`]*)`", doc.read_text())
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
        assert re.search(rf"^\s*output: (.*, )?{re.escape(target)}(,|$)", output, flags=re.M), output[-3000:]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_links_point_to_files_of_the_repository(doc):
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which does not exist"
    assert "../shared" not in text and "session" not in text.lower(), doc.name


def test_the_laptop_command_installs_what_the_report_needs():
    """`snakemake --report` imports pygments, which snakemake does not install: the extra the README's first
    command installs must bring it."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    first = re.search(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S).group(1)
    assert ".[workflow]" in first and "--configfile workflow/presets/quick.yaml" in first
    assert any(dep.startswith("pygments") for dep in extras["workflow"])


# the stages of docs/performance.md's laptop table and the rules whose jobs each counts
STAGES = {
    "MLP probe gradients": ["probe_gradients"],
    "MLP probe sweeps": ["probe_sweep"],
    "finetunes": ["finetune_pretrain", "finetune_xnor", "finetune_table", "finetune_figures"],
    "layer probe": ["layerprobe_gradients", "layerprobe_sweep", "layerprobe_tables", "layerprobe_figures"],
    "training: lr tuning": ["training_tune", "training_switch_points", "training_switch_tune"],
    "training: runs": ["training_run"],
    "training: float32 vs float64": ["training_precision"],
    "the probe along training": ["training_probe_gradients", "training_probe_sweep", "training_probe_tables"],
}


def test_job_counts_in_the_docs_are_the_laptop_dry_runs(tmp_path):
    """Every job count the README and docs/performance.md state is what the laptop preset plans now."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules", "-s",
                             str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(REPO / "workflow/presets/quick.yaml")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M)}
    readme, performance = (REPO / "README.md").read_text(), (REPO / "docs/performance.md").read_text()
    stated = re.findall(r"(\d+) jobs\b", readme + performance)
    assert stated and {int(n) for n in stated} == {counts["total"]}, stated
    laptop = performance.split("## The laptop run")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| (.+?) \| (\d+) \|", laptop, flags=re.M))
    for stage, rules in STAGES.items():
        row = next(label for label in rows if label.startswith(stage))
        assert int(rows[row]) == sum(counts.get(rule, 0) for rule in rules), (row, counts)
    text = "\n".join(p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk")))
    benchmarked = {m.group(1) for m in re.finditer(r"^rule (\w+):\n(?:(?!^rule ).*\n)*?\s+benchmark:", text, re.M)}
    twins = re.findall(r"^use rule (\w+) as (\w+) with:", text, re.M)  # a twin keeps its base's benchmark
    benchmarked |= {twin for base, twin in twins if base in benchmarked}
    row = next(label for label in rows if label.startswith("all jobs with a benchmark"))
    assert int(rows[row]) == sum(n for rule, n in counts.items() if rule in benchmarked)
