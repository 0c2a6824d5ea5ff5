"""One home per default: the config schema's defaults are the ones that count (the workflow fills them in);
the dataclasses a notebook builds by hand must default to the same values, field by field."""

import dataclasses

import pytest

from bnnprobe.config import read_schema
from bnnprobe.mlp.network import MLPSpec
from bnnprobe.training.trainer import TrainingSpec

SCHEMA = read_schema()


def schema_default(*keys):
    node = SCHEMA
    for key in keys:
        node = node["properties"][key]
    return node["default"]


def field_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


# every dataclass field with a default, and the schema key that sets it in the workflow
MLP_FIELDS = {"activation": ("probe", "activation"), "depth": ("probe", "depth"),
              "teacher_seed": ("probe", "teacher_seed"), "init_scale": ("probe", "init_scale"),
              "teacher": ("probe", "teacher")}
TRAINING_FIELDS = {"optimizer": ("training", "optimizer"), "patience": ("training", "plateau", "patience"),
                   "rel_tol": ("training", "plateau", "rel_tol"), "smooth": ("training", "plateau", "smooth"),
                   "decay_factor": ("training", "decay", "factor"),
                   "reductions": ("training", "decay", "reductions"), "switch": ("training", "switch"),
                   "stationarity_batches": ("training", "stationarity", "batches")}
# fields the plan derives per job rather than reads from one key
DERIVED = {"extra_reductions", "keep_trajectory", "stops"}


@pytest.mark.parametrize("cls, mapping", [(MLPSpec, MLP_FIELDS), (TrainingSpec, TRAINING_FIELDS)],
                         ids=["MLPSpec", "TrainingSpec"])
def test_dataclass_defaults_are_the_schemas(cls, mapping):
    defaults = field_defaults(cls)
    assert set(defaults) - DERIVED == set(mapping), "every default field is mapped to its schema key"
    for name, keys in mapping.items():
        assert defaults[name] == schema_default(*keys), (name, keys)
