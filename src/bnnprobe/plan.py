"""The plan: every job of the workflow as a typed record, built once from the checked config (torch-free).

The Snakefile builds ``Plan.from_config(config)`` once; each rule looks its job up by its wildcards
(``PLAN.gradients["mlp", wildcards.estimator]``) and hands the job to its script as a plain dict
(``params: job=...``, which is also what Snakemake compares to decide a re-run: a job holds exactly what
it depends on). A script rebuilds the job (``GradientJob(**snakemake.params.job)``) and never reads a
value back from a path, a wildcard or an estimator name. Names stay labels: an estimator *instance* is
(estimator, knob, value) and its label ``nes-500_sigma0.1`` is derived from it; a schedule is parsed once
and its path component ``ste-vanilla_to_cdg`` derived from it.

Read top to bottom: result paths, estimator instances, the job records, then :meth:`Plan.from_config`
building them probe by probe.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from .config import mlp_probe_estimators, probe_estimators
from .estimators.registry import FAMILIES, Family, family_of
from .finetune.runs import resolve_runs
from .naming import format_value, knob_values, reference_value, split_instance
from .probes import ALL_COORDINATES, PHASES
from .training.schedule import Schedule, grid_key, parse_schedule

# ---- result paths: each pattern written once ---------------------------------------------------
PATHS = {
    "data": "results/data/{dataset}/tensors.pt",
    "probe_record": "results/probe/gradients/{estimator}/dim{dim}/seed{seed}.pt",
    "probe_sweep": "results/probe/sweeps/{grid}/{estimator}/dim{dim}.csv",
    "probe_fine_grid": "results/probe/fine_grids/{estimator}/dim{dim}.json",
    "pretrained": "results/finetune/pretrain/{dataset}/w{width}/seed{seed}/{file}",
    "finetuned": "results/finetune/xnor/{dataset}/{run}/seed{seed}/{file}",
    "layer_record": "results/layerprobe/gradients/{run}/{estimator}/seed{seed}.pt",
    "layer_sweep": "results/layerprobe/sweeps/{grid}/{run}/{estimator}.csv",
    "layer_fine_grid": "results/layerprobe/fine_grids/{run}/{estimator}.json",
    "tuning": "results/training/tuning/{estimator}.csv",
    "switch_points": "results/training/tuning/switch_points/{estimator}.pt",
    "switch_tuning": "results/training/tuning/switches/{schedule}.csv",
    "training_run": "results/training/runs/{schedule}/dim{dim}/seed{seed}/{file}",
    "precision": "results/training/precision/{schedule}.csv",
    "phase_record": "results/training/probe/gradients/{schedule}/{estimator}/dim{dim}/seed{seed}/{phase}.pt",
    "phase_sweep": "results/training/probe/sweeps/{grid}/{schedule}/{estimator}/dim{dim}/{phase}.csv",
    "phase_fine_grid": "results/training/probe/fine_grids/{schedule}/{estimator}/dim{dim}/{phase}.json",
}
GRIDS = ("coarse", "fine")


def fill(name: str, **values) -> str:
    """The path ``name`` with every wildcard filled."""
    return PATHS[name].format(**values)


# ---- estimator instances -----------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """An estimator at one value of its knob (sigma or eps); an estimator without a knob is its own instance."""

    name: str
    value: float | None = None
    on_axis: bool = True  # its label names its knob value (a probe that sweeps sigma/eps), else it is the name

    @property
    def family(self) -> Family:
        return family_of(self.name)

    @property
    def label(self) -> str:
        """``nes-500_sigma0.1`` (or ``nes-500`` off an axis): the instance as a path component and a table key."""
        knob = self.family.knob
        return f"{self.name}_{knob}{format_value(self.value)}" if knob and self.on_axis else self.name

    def settings(self, config: dict) -> dict:
        return self.family.settings(self.name, self.value, config)


def instances(names: list[str], config: dict, axes: bool = True) -> list[Instance]:
    """The instances of config estimator names, in config order without repeats: a plain name gives one per
    value of its knob (with ``axes`` False only the reference value, labelled by the name alone), an instance
    name itself (the config's text, parsed here once)."""
    out = []
    for text in names:
        name, knob, value = split_instance(text)
        fam = family_of(name)
        if knob is not None:
            out.append(Instance(name, value))
        elif not fam.knob:
            out.append(Instance(name))
        else:
            values = knob_values(config, fam.name) if axes else [reference_value(config, fam.name)]
            out.extend(Instance(name, v, on_axis=axes) for v in values)
    return list(dict.fromkeys(out))


# ---- the job records ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GradientJob(Job):
    """One estimator instance of one probe: a gradient record per spec (``records[i]`` from ``specs[i]``)."""

    probe: str  # a key of bnnprobe.probes.PROBES
    estimator: str  # the instance's label
    name: str  # the estimator it runs (its noise seeds follow this name)
    family: str
    settings: dict
    specs: list
    records: list
    compute: dict
    gpu: bool
    needs: list  # the files its problems are built from (a finetuned model, its data, a run's snapshots)


@dataclass(frozen=True)
class SweepJob(Job):
    """The lr sweeps of one estimator instance's records, a coarse/fine/fine-grid output per group."""

    probe: str
    estimator: str
    records: list
    references: dict  # "cdg" (and "smoothed") -> the records each cosine compares with
    groups: list  # the key values of each group, in the order of the outputs
    coarse: list
    fine: list
    fine_grids: list
    coarse_lrs: list
    fine_settings: dict
    step_layers: list
    compute: dict
    needs: list  # as GradientJob's

    def inputs(self) -> dict:
        """Its input files by name: its records, each reference's and the files its problems need."""
        return {"gradients": self.records, **self.references, "needs": self.needs}


@dataclass(frozen=True)
class TuningJob(Job):
    """Every lr of a grid for one estimator at every training dim on the tuning seeds, from the
    initialisation (``after`` empty) or from ``after``'s converged weights (``points``)."""

    estimator: str
    family: str
    after: str
    dims: list
    seeds: list
    budget: dict
    extend: int
    grid: list
    problem: dict
    settings: dict
    compute: dict
    points: str | None
    table: str
    gpu: bool


@dataclass(frozen=True)
class SwitchPointJob(Job):
    """A switch's first estimator trained to convergence on every tuning seed and dim."""

    estimator: str
    family: str
    dims: list
    seeds: list
    problem: dict
    protocol: dict
    settings: dict
    compute: dict
    tuning: str | None  # its tuning table (None with a fixed lr)
    lr: float | str
    points: str
    gpu: bool


@dataclass(frozen=True)
class TrainingJob(Job):
    """Every (dim, seed) run of one schedule (``specs[i]`` writes ``curves[i]`` and ``snapshots[i]``), or its
    precision check (``table``: the same first seed trained in float32 and float64)."""

    schedule: str
    slug: str
    estimators: list
    families: list
    specs: list  # TrainingSpec fields without the lrs
    lr: float | str  # a number, or auto: read from the tuning tables
    settings: dict  # estimator -> settings
    compute: dict
    tuning: list
    curves: list
    snapshots: list
    table: str | None
    gpu: bool
    # a switch at its first estimator's convergence: that estimator's own run of each (dim, seed), whose state
    # there the switch takes over instead of repeating it (empty: trained from the start)
    handoffs: list = field(default_factory=list)


@dataclass(frozen=True)
class FinetuneJob(Job):
    """A full-precision pretrain (``pretrained`` None) or an XNOR finetune of one run and seed."""

    dataset: str
    data: str
    width: int
    seed: int
    run_id: str | None
    settings: dict
    compute: dict
    pretrained: str | None
    model: str
    metrics: str


# ---- the plan ----------------------------------------------------------------------------------
# what an MLP probe problem depends on besides its dim and seed (bnnprobe.mlp.network.MLPSpec's fields)
MLP_PROBLEM_KEYS = ("num_batches", "batch_size", "activation", "depth", "teacher_seed", "teacher", "init_scale")


# ---- what a job asks the scheduler for ----
# A job asks for MEM_MARGIN times its estimated peak: a process with torch and bnnprobe loaded (~1 GB
# measured), the batch's float64 activations and their stacked copies (~12 per coordinate), the block
# budget. The laptop run's measured peaks (docs/laptop/peaks.csv) are at most 1/MEM_MARGIN of it (tested).
MEM_MARGIN = 1.5
FIXED_MEM_MB = {"finetune": 8000, "data": 8000}  # a ResNet's training (and the data cache) on any device


def budget_mb(config: dict, problem: str = "mlp") -> float:
    """The memory budget of one block a job of ``problem`` uses (bnnprobe.device.MEMORY_BUDGET_MB for auto):
    a job resolves auto by the device it gets, so ask for the larger case unless it is the CPU."""
    budget = config["compute"]["memory_budget_mb"]
    if budget == "auto":
        cpu = {"mlp": 16, "layer": 1024}[problem]
        return cpu if config["compute"]["device"] == "cpu" else max(cpu, 2048)
    return budget


def job_mem_mb(config: dict, stage: str) -> int:
    """The ``mem_mb`` a job of ``stage`` (probe, training, layerprobe, finetune, data) asks for."""
    if stage in FIXED_MEM_MB:
        return FIXED_MEM_MB[stage]
    if stage == "layerprobe":
        return int(budget_mb(config, "layer") * 1.5 + 3000)
    batch, dims = ((config["probe"]["batch_size"], config["probe"]["dims"]) if stage == "probe"
                   else (config["training"]["val_batch_size"], config["training"]["dims"]))
    return int(MEM_MARGIN * (1024 + 1.5 * budget_mb(config) + 12 * batch * max(dims) * 8 / 2**20))


def _wants_gpu(names, config) -> bool:
    """A GPU for a job that runs an estimator the registry marks as heavy, unless the study runs on the CPU."""
    return any(family_of(n).gpu for n in names) and config["compute"]["device"] != "cpu"


@dataclass
class Plan:
    """Every job of a config, keyed by its rule's wildcard values (see the module docstring)."""

    config: dict
    gradients: dict = field(default_factory=dict)  # (probe, key) -> GradientJob; key: label, or (slug, label)
    sweeps: dict = field(default_factory=dict)  # the same keys -> SweepJob
    tuning: dict = field(default_factory=dict)  # estimator -> TuningJob from the initialisation
    switch_points: dict = field(default_factory=dict)  # estimator -> SwitchPointJob
    switch_tuning: dict = field(default_factory=dict)  # switch slug -> TuningJob at the switch point
    training: dict = field(default_factory=dict)  # slug -> TrainingJob
    precision: dict = field(default_factory=dict)  # slug -> TrainingJob (with its table)
    pretrain: dict = field(default_factory=dict)  # (dataset, width, seed) -> FinetuneJob
    xnor: dict = field(default_factory=dict)  # (dataset, run id, seed) -> FinetuneJob
    schedules: dict = field(default_factory=dict)  # slug -> Schedule

    @classmethod
    def from_config(cls, config: dict) -> "Plan":
        plan = cls(config)
        plan._mlp_probe()
        if config.get("finetune") is not None:
            plan._finetunes()
            if config.get("layerprobe") is not None:
                plan._layer_probe()
        if config.get("training") is not None:
            plan._training()
            plan._phase_probe()
        return plan

    # ---- shared pieces ----
    @property
    def compute(self) -> dict:
        c = self.config["compute"]
        return {k: c[k] for k in ("device", "dtype", "memory_budget_mb", "fused")}

    def _gradient(self, probe: str, key, instance: Instance, specs: list, records: list, needs=()) -> None:
        self.gradients[probe, key] = GradientJob(
            probe=probe, estimator=instance.label, name=instance.name, family=instance.family.name,
            settings=instance.settings(self.config), specs=specs, records=records, compute=self.compute,
            gpu=_wants_gpu([instance.name], self.config), needs=sorted(set(needs)))

    def _sweep(self, probe: str, key, instance: Instance, records, references, groups, outputs: dict,
               fine: dict, step_layers, needs=()) -> None:
        lr = self.config["lr"]
        self.sweeps[probe, key] = SweepJob(
            probe=probe, estimator=instance.label, records=records, references=references, groups=groups,
            coarse=outputs["coarse"], fine=outputs["fine"], fine_grids=outputs["fine_grid"],
            coarse_lrs=list(lr["coarse"]), fine_settings=fine, step_layers=[str(s) for s in step_layers],
            compute=self.compute, needs=sorted(set(needs)))

    def reference_values(self, instances_: list[Instance]) -> dict:
        """Estimator -> the reference (first) value of its knob, for the estimators of ``instances_`` with one."""
        names = sorted({i.name for i in instances_ if i.family.knob})
        return {name: reference_value(self.config, family_of(name).name) for name in names}

    def mlp_problem(self, dim: int, seed: int, **changes) -> dict:
        p = self.config["probe"]
        return {"dim": dim, "seed": seed, **{k: p[k] for k in MLP_PROBLEM_KEYS}, **changes}

    # ---- the MLP probe ----
    @property
    def mlp_instances(self) -> list[Instance]:
        """Every (estimator, sigma or eps) the MLP probe computes, CDG and the smoothed gradient included."""
        return instances(mlp_probe_estimators(self.config), self.config)

    def _smoothed_reference(self, instance: Instance) -> Instance:
        """The smoothed gradient an instance's cos_to_smoothed compares with: at its own sigma where the
        smoothed gradient is computed there, else at the reference sigma."""
        sigmas = [float(v) for v in self.config["smoothed"]["sigma"]]
        own = instance.value if instance.family.knob == "sigma" and instance.value in sigmas else sigmas[0]
        return Instance("smoothed", own)

    def _mlp_probe(self) -> None:
        p = self.config["probe"]
        dims, seeds = p["dims"], p["seeds"]
        cdg = Instance("cdg", reference_value(self.config, "cdg"))  # the reference of cos_to_cdg, on the eps axis
        for instance in self.mlp_instances:
            label = instance.label
            cells = list(itertools.product(dims, seeds))
            records = [fill("probe_record", estimator=label, dim=d, seed=s) for d, s in cells]
            self._gradient("mlp", label, instance, [self.mlp_problem(d, s) for d, s in cells], records)
            refs = {"cdg": cdg, "smoothed": self._smoothed_reference(instance)}
            references = {name: [fill("probe_record", estimator=ref.label, dim=d, seed=s) for d, s in cells]
                          for name, ref in refs.items()}
            outputs = {grid: [fill("probe_sweep", grid=grid, estimator=label, dim=d) for d in dims] for grid in GRIDS}
            outputs["fine_grid"] = [fill("probe_fine_grid", estimator=label, dim=d) for d in dims]
            self._sweep("mlp", label, instance, records, references, [{"dim": d} for d in dims], outputs,
                        dict(self.config["lr"]["fine"]), p["step_layers"])

    # ---- the finetunes and the layer probe ----
    @property
    def finetune_runs(self) -> dict:
        return {run["id"]: run for run in resolve_runs(self.config["finetune"])}

    def finetuned_model(self, run_id: str) -> str:
        """The layer probe reads the XNOR finetune of the first finetune seed."""
        seed = self.config["finetune"]["seeds"][0]
        return fill("finetuned", dataset=self.config["finetune"]["dataset"], run=run_id, seed=seed, file="model.pt")

    def _finetunes(self) -> None:
        f = self.config["finetune"]
        dataset = f["dataset"]
        data = fill("data", dataset=dataset)
        for run_id, run in self.finetune_runs.items():
            for seed in f["seeds"]:
                pretrained = fill("pretrained", dataset=dataset, width=run["width"], seed=seed, file="model.pt")
                # keyed by their rules' wildcard values, as text
                self.pretrain[dataset, str(run["width"]), str(seed)] = FinetuneJob(
                    dataset=dataset, data=data, width=run["width"], seed=seed, run_id=None, settings=dict(f["pretrain"]),
                    compute=self.compute, pretrained=None, model=pretrained,
                    metrics=fill("pretrained", dataset=dataset, width=run["width"], seed=seed, file="metrics.csv"))
                self.xnor[dataset, run_id, str(seed)] = FinetuneJob(
                    dataset=dataset, data=data, width=run["width"], seed=seed, run_id=run_id, settings=dict(run),
                    compute=self.compute, pretrained=pretrained,
                    model=fill("finetuned", dataset=dataset, run=run_id, seed=seed, file="model.pt"),
                    metrics=fill("finetuned", dataset=dataset, run=run_id, seed=seed, file="metrics.csv"))

    @property
    def layer_instances(self) -> list[Instance]:
        return instances(probe_estimators({"estimators": self.config["layerprobe"]["estimators"]}), self.config,
                         axes=False)

    def _layer_probe(self) -> None:
        lp = self.config["layerprobe"]
        runs = self.finetune_runs
        data = fill("data", dataset=self.config["finetune"]["dataset"])
        cells = list(itertools.product(runs, lp["seeds"]))
        cdg = instances(["cdg"], self.config, axes=False)[0]
        for instance in self.layer_instances:
            label = instance.label
            records = [fill("layer_record", run=r, estimator=label, seed=s) for r, s in cells]
            specs = [{"run_id": r, "width": runs[r]["width"], "model": self.finetuned_model(r), "data": data,
                      "layer": lp["layer"], "k": lp["k"], "batch_size": lp["batch_size"],
                      "num_batches": lp["num_batches"], "seed": s} for r, s in cells]
            needs = [data, *(self.finetuned_model(r) for r in runs)]
            self._gradient("layer", label, instance, specs, records, needs)
            references = {"cdg": [fill("layer_record", run=r, estimator=cdg.label, seed=s) for r, s in cells]}
            outputs = {grid: [fill("layer_sweep", grid=grid, run=r, estimator=label) for r in runs] for grid in GRIDS}
            outputs["fine_grid"] = [fill("layer_fine_grid", run=r, estimator=label) for r in runs]
            self._sweep("layer", label, instance, records, references, [{"run_id": r} for r in runs], outputs,
                        dict(self.config["lr"]["fine"]), [ALL_COORDINATES], needs)

    # ---- the study along training ----
    def slug(self, schedule: Schedule) -> str:
        """The schedule as a path component: ``ste-vanilla>cdg`` -> ``ste-vanilla_to_cdg``."""
        return schedule.name.replace(">", "_to_")

    @property
    def training_config(self) -> dict:
        return self.config["training"]

    def training_compute(self) -> dict:
        return {**self.compute, "dtype": self.training_config["dtype"]}

    def training_problem(self) -> dict:
        """What a training run's MLP problem depends on besides its dim and seed."""
        p = self.config["probe"]
        return {"batch_size": self.training_config["batch_size"],
                **{k: p[k] for k in ("activation", "depth", "teacher_seed", "teacher", "init_scale")}}

    def protocol(self) -> dict:
        """What every run follows: a TrainingSpec's fields besides problem, schedule and lrs."""
        t = self.training_config
        return {"steps": t["steps"], "val_batch_size": t["val_batch_size"], "eval_every": t["eval_every"],
                "optimizer": t["optimizer"], "patience": t["plateau"]["patience"],
                "rel_tol": t["plateau"]["rel_tol"], "smooth": t["plateau"]["smooth"],
                "decay_factor": t["decay"]["factor"], "reductions": t["decay"]["reductions"],
                "stationarity_batches": t["stationarity"]["batches"]}

    def _tuning_job(self, name: str, after: str, points: str | None, table: str) -> TuningJob:
        t = self.training_config
        budget = {"steps": t["tuning"]["steps"], "eval_every": t["eval_every"], "smooth": t["plateau"]["smooth"],
                  "val_batch_size": t["val_batch_size"], "optimizer": t["optimizer"]}
        return TuningJob(estimator=name, family=family_of(name).name, after=after, dims=list(t["dims"]), seeds=list(t["tuning"]["seeds"]),
                         budget=budget, extend=t["tuning"]["extend"],
                         grid=list(t["tuning"]["grid"][grid_key(name, t["optimizer"])]),
                         problem=self.training_problem(), settings=self.estimator_settings(name),
                         compute=self.training_compute(), points=points, table=table,
                         gpu=_wants_gpu([name], self.config))

    def estimator_settings(self, name: str) -> dict:
        """A plain estimator name's settings (at the reference value of its knob)."""
        return instances([name], self.config, axes=False)[0].settings(self.config)

    def _training(self) -> None:
        t = self.training_config
        tuned = t["lr"] == "auto"
        parsed = [parse_schedule(text) for text in t["schedules"]]
        self.schedules = {self.slug(s): s for s in parsed}
        switches = [s for s in parsed if s.switches]
        firsts = list(dict.fromkeys(s.first for s in switches))
        if tuned:
            for name in dict.fromkeys(s.first for s in parsed):
                self.tuning[name] = self._tuning_job(name, "", None, fill("tuning", estimator=name))
            for schedule in switches:
                slug = self.slug(schedule)
                self.switch_tuning[slug] = self._tuning_job(
                    schedule.then, schedule.first, fill("switch_points", estimator=schedule.first),
                    fill("switch_tuning", schedule=slug))
        for name in firsts:
            if tuned:
                self.switch_points[name] = SwitchPointJob(
                    estimator=name, family=family_of(name).name, dims=list(t["dims"]), seeds=list(t["tuning"]["seeds"]),
                    problem=self.training_problem(), protocol={**self.protocol(), "stationarity_batches": 0},
                    settings=self.estimator_settings(name), compute=self.training_compute(),
                    tuning=fill("tuning", estimator=name), lr=t["lr"],
                    points=fill("switch_points", estimator=name), gpu=_wants_gpu([name], self.config))
        probed = set(t["probe"]["schedules"])
        cells = list(itertools.product(t["dims"], t["seeds"]))
        for schedule in parsed:
            slug = self.slug(schedule)
            tuning = ([fill("tuning", estimator=schedule.first)]
                      + ([fill("switch_tuning", schedule=slug)] if schedule.switches else [])) if tuned else []
            base = dict(schedule=schedule.name, slug=slug, estimators=list(schedule.estimators),
                        families=[family_of(n).name for n in schedule.estimators], lr=t["lr"],
                        settings={n: self.estimator_settings(n) for n in schedule.estimators},
                        compute=self.training_compute(), tuning=tuning,
                        gpu=_wants_gpu(schedule.estimators, self.config))
            spec = {"schedule": schedule.name, **self.protocol(),
                    "switch": t["switch"] if schedule.switches else "converged",
                    "extra_reductions": t["decay"]["reductions"] if schedule.name in firsts else 0,
                    "keep_trajectory": schedule.name in probed}
            alone = self.slug(Schedule(schedule.first))
            takes_over = schedule.switches and t["switch"] == "converged" and alone in self.schedules
            self.training[slug] = TrainingJob(
                **base, specs=[{"problem": {"dim": d, "seed": s, "num_batches": 1, **self.training_problem()},
                                **spec} for d, s in cells],
                curves=[fill("training_run", schedule=slug, dim=d, seed=s, file="curve.csv") for d, s in cells],
                snapshots=[fill("training_run", schedule=slug, dim=d, seed=s, file="snapshots.pt") for d, s in cells],
                table=None,
                handoffs=[fill("training_run", schedule=alone, dim=d, seed=s, file="snapshots.pt")
                          for d, s in cells] if takes_over else [])
            if schedule.name in t["precision"]["schedules"]:
                steps = t["precision"]["steps"] or t["steps"]
                seed = t["seeds"][0]
                self.precision[slug] = TrainingJob(
                    **base, specs=[{"problem": {"dim": d, "seed": seed, "num_batches": 1, **self.training_problem()},
                                    **spec, "steps": steps, "stops": False, "keep_trajectory": False,
                                    "stationarity_batches": 0} for d in t["precision"]["dims"]],
                    curves=[], snapshots=[], table=fill("precision", schedule=slug))

    @property
    def phase_instances(self) -> list[Instance]:
        """The probe along training's estimators: the configured ones, CDG and the smoothed gradient, each at
        the reference value of its knob."""
        return instances(mlp_probe_estimators({"estimators": self.training_config["probe"]["estimators"]}),
                         self.config, axes=False)

    def _phase_probe(self) -> None:
        t = self.training_config
        p = self.config["probe"]
        cells = list(itertools.product(t["dims"], t["seeds"], PHASES))
        num_batches = t["probe"]["num_batches"] or p["num_batches"]
        fine = {**self.config["lr"]["fine"], **t["probe"]["fine"]}
        by_name = {i.name: i for i in self.phase_instances}
        for text in t["probe"]["schedules"]:
            schedule = parse_schedule(text)
            slug = self.slug(schedule)
            for instance in self.phase_instances:
                label = instance.label

                def records(of: Instance):
                    return [fill("phase_record", schedule=slug, estimator=of.label, dim=d, seed=s, phase=ph)
                            for d, s, ph in cells]

                specs = [{**self.mlp_problem(d, s, num_batches=num_batches), "schedule": schedule.name, "phase": ph,
                          "snapshots": fill("training_run", schedule=slug, dim=d, seed=s, file="snapshots.pt")}
                         for d, s, ph in cells]
                needs = [spec["snapshots"] for spec in specs]
                self._gradient("phase", (slug, label), instance, specs, records(instance), needs)
                groups = [{"dim": d, "phase": ph} for d, ph in itertools.product(t["dims"], PHASES)]
                outputs = {grid: [fill("phase_sweep", grid=grid, schedule=slug, estimator=label, dim=g["dim"],
                                       phase=g["phase"]) for g in groups] for grid in GRIDS}
                outputs["fine_grid"] = [fill("phase_fine_grid", schedule=slug, estimator=label, dim=g["dim"],
                                             phase=g["phase"]) for g in groups]
                references = {"cdg": records(by_name["cdg"]), "smoothed": records(by_name["smoothed"])}
                self._sweep("phase", (slug, label), instance, records(instance), references, groups, outputs, fine,
                            p["step_layers"], needs)

    # ---- what the rules ask ----
    def jobs(self, probe: str, table: str = "gradients") -> dict:
        """The gradient (or sweep) jobs of one probe, by key."""
        return {key: job for (name, key), job in getattr(self, table).items() if name == probe}

    def families(self) -> set[str]:
        """Every estimator family some job of this plan runs."""
        names = {job.family for job in self.gradients.values()}
        names |= {family_of(n).name for job in self.training.values() for n in job.estimators}
        return names


__all__ = ["FAMILIES", "FinetuneJob", "GradientJob", "Instance", "PATHS", "Plan", "SweepJob", "SwitchPointJob",
           "TrainingJob", "TuningJob", "fill", "instances"]
