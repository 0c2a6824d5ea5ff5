"""The package's shape: what the Snakefile imports is torch-free, every rule tracks the code its script
runs (derived, checked here against what Python really loads), the conda env covers every import, one
record format, no two classes of one name."""

import ast
import functools
import json
import re
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from bnnprobe.codedeps import PACKAGE_DIR, code_files
from bnnprobe.probes import PROBES
from conftest import REPO

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
RULES = REPO / "workflow" / "rules"
from bnnprobe.estimators.registry import FAMILIES as REGISTRY  # noqa: E402

FAMILIES = sorted({f"bnnprobe.estimators.{f.module}" for f in REGISTRY.values()}
                  | {"bnnprobe.estimators.sampling"})  # loaded per estimator
# a verified download does not depend on the code that verified it: re-downloading 2 GB on an edit
# of data.py would be wrong, so the download rules track no code
UNTRACKED = {"data_fetch.py"}


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_modules_the_snakefile_imports_need_no_torch():
    text = (REPO / "Snakefile").read_text() + "".join(p.read_text() for p in RULES.glob("*.smk"))
    modules = sorted(set(re.findall(r"^from (bnnprobe[\w.]*) import", text, flags=re.M)))
    assert "bnnprobe.config" in modules and "bnnprobe.codedeps" in modules
    result = run_python(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "src")!r})
        sys.modules["torch"] = None  # any import of torch now fails
        for name in {modules!r}:
            __import__(name)
        print("ok")
    """))
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def _dynamic(script):
    return [p.source for p in PROBES.values()] if script.name in ("gradients.py", "sweeps.py") else []


@functools.lru_cache(maxsize=None)
def loaded_by_imports() -> dict:
    """Script name -> the bnnprobe modules Python loads when it runs that script's import statements (and its
    probes' sources): one process, every bnnprobe module unloaded before each script's imports, so that each
    loads its modules afresh."""
    scripts = {}
    for script in SCRIPTS:
        tree = ast.parse(script.read_text())
        imports = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        scripts[script.name] = [line for line in imports if "bnnprobe" in line and "logs" not in line] + [
            f"import {m}" for m in _dynamic(script)]
    result = run_python(textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "src")!r})
        loaded = {{}}
        for name, imports in {scripts!r}.items():
            for module in [m for m in sys.modules if m.split(".")[0] == "bnnprobe"]:
                del sys.modules[module]
            exec("\\n".join(imports), {{}})
            loaded[name] = sorted(m for m in sys.modules if m.startswith("bnnprobe"))
        print(json.dumps(loaded))
        """))
    assert result.returncode == 0, result.stderr
    return {name: set(modules) for name, modules in json.loads(result.stdout.splitlines()[-1]).items()}


def module_of(path):
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_derived_code_covers_what_the_script_loads(script):
    tracked = {module_of(p) for p in code_files(script, dynamic=_dynamic(script))}
    loaded = loaded_by_imports()[script.name] - set(FAMILIES)  # families: per estimator, see below
    assert loaded <= tracked, f"{script.name} loads {sorted(loaded - tracked)} that its rule would not track"


def test_every_rule_with_a_script_tracks_that_scripts_code():
    text = "".join(p.read_text() for p in sorted(RULES.glob("*.smk")))
    rules = re.split(r"^rule ", text, flags=re.M)[1:]
    checked = 0
    for rule in rules:
        name = rule.split(":", 1)[0]
        script = re.search(r'script:\s*"\.\./scripts/(\w+\.py)"', rule)
        if script is None or script.group(1) in UNTRACKED:
            continue
        script = script.group(1)
        tracked = re.search(r"code=(?:estimator_)?code\(\s*\"(\w+\.py)\"", rule)
        assert tracked, f"rule {name} runs {script} but lists no code derived from it"
        assert tracked.group(1) == script, f"rule {name} runs {script} but tracks {tracked.group(1)}"
        checked += 1
    assert checked >= 15


def test_estimator_families_are_loaded_only_by_the_estimator_that_runs():
    result = run_python(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "src")!r})
        from bnnprobe.estimators import estimate
        from bnnprobe.mlp import MLPProbe, MLPSpec
        problem = MLPProbe(MLPSpec(dim=2, seed=0, batch_size=64, num_batches=1)).batch(0)
        estimate("ste-vanilla", problem, {{"variant": "vanilla"}})
        print(sorted(m for m in sys.modules if m.startswith("bnnprobe.estimators.")))
    """))
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == ["bnnprobe.estimators.registry", "bnnprobe.estimators.ste"]


def test_the_docs_table_of_shared_estimator_modules_is_the_registrys():
    """docs/architecture.md's table of the estimator modules several families load equals what the families'
    modules import (the files each job tracks), every family and every shared module included."""
    from bnnprobe.codedeps import code_files, module_file
    from bnnprobe.estimators.registry import FAMILIES

    loaders = {}
    for fam in FAMILIES.values():
        for path in code_files(module_file(f"bnnprobe.estimators.{fam.module}")):
            if path.parent.name == "estimators" and path.name not in ("__init__.py", "registry.py"):
                loaders.setdefault(path.name, set()).add(fam.name)
    shared = {module: names for module, names in loaders.items() if len(names) > 1}
    text = (REPO / "docs" / "architecture.md").read_text().split("<!-- shared-estimator-modules -->")[1]
    rows = re.findall(r"^\| `estimators/(\w+\.py)` \| (.+) \|$", text, flags=re.M)
    assert {module: set(re.findall(r"`([^`]+)`", names)) for module, names in rows} == shared
    assert shared["ste.py"] >= {"fogzo", "guided-es", "span"}  # the STE guides: what a referee asks about


PACKAGES = {"torch": "pytorch", "sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}


def third_party_imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("bnnprobe", "snakemake")}


def test_conda_env_covers_every_import_of_every_script():
    env = yaml.safe_load((REPO / "envs" / "bnnprobe.yaml").read_text())
    listed = {re.split(r"[<>=]", dep)[0] for dep in env["dependencies"]}
    for script in SCRIPTS:
        dynamic = [p.source for p in PROBES.values()]
        for path in [script, *code_files(script, dynamic=dynamic)]:
            for name in third_party_imports(path):
                assert PACKAGES.get(name, name) in listed, f"{path.name} imports {name}, not in envs/bnnprobe.yaml"


def test_no_two_classes_share_a_name():
    seen = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                assert node.name not in seen, f"class {node.name} in {path} and {seen[node.name]}"
                seen[node.name] = path


def test_a_record_of_another_format_is_refused_naming_the_file(tmp_path):
    from bnnprobe.io import save_torch
    from bnnprobe.study import RecordError, load_record

    path = tmp_path / "seed0.pt"
    save_torch({"format": 1, "gradients": torch.zeros(1, 3)}, path)
    with pytest.raises(RecordError, match=r"seed0\.pt is a gradient record of format 1.*delete it"):
        load_record(path)


def test_a_gradient_record_reads_back_as_the_dataclass_written_and_a_partial_one_is_refused(tmp_path):
    from bnnprobe.device import Compute
    from bnnprobe.io import load_torch, save_torch
    from bnnprobe.mlp.source import SOURCE
    from bnnprobe.study import GradientRecord, RecordError, compute_record, load_record, save_record

    spec = {"dim": 2, "seed": 0, "batch_size": 50, "num_batches": 2}
    record = compute_record(SOURCE, spec, "cdg", {"eps": 0.05, "scheme": "forward"},
                            Compute.from_config({"device": "cpu"}))
    save_record(record, tmp_path / "seed0.pt")
    back = load_record(tmp_path / "seed0.pt", SOURCE)
    assert isinstance(back, GradientRecord) and back.key == {"dim": 2, "seed": 0} and back.estimator == "cdg"
    assert torch.equal(back.gradients, record.gradients) and back.gradients.shape[0] == 2
    partial = {k: v for k, v in load_torch(tmp_path / "seed0.pt").items() if k != "fingerprint"}
    save_torch(partial, tmp_path / "seed1.pt")
    with pytest.raises(RecordError, match=r"seed1\.pt is a gradient record with the fields .*delete it"):
        load_record(tmp_path / "seed1.pt")


def test_tables_figures_downloads_and_targets_are_local_rules_and_nothing_else():
    text = (REPO / "Snakefile").read_text() + "".join(p.read_text() for p in sorted(RULES.glob("*.smk")))
    rules = dict(re.findall(r"^rule (\w+):\n((?:    .*\n|\n)+?)(?=^\S|\Z)", text, flags=re.M))
    local = {name for name, body in rules.items() if re.search(r"^    localrule: True$", body, flags=re.M)}
    expected = {name for name in rules if re.search(r"_(tables|table|figures|findings|lr_curves|archive|split)$", name)
                or "input:" in rules[name] and "output:" not in rules[name]}
    assert "all" in expected and "probe_gradients" not in expected and "data_cache" not in expected
    assert local == expected
