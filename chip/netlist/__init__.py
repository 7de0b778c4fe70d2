"""The netlist: the logical model of what the user asked for, and its YAML form.

Modules, in the order data flows through them:

* ``model`` — the frozen dataclasses, one per kind (hardware units, checks in ``__post_init__``)
  and the vocabularies derived from them;
* ``schema`` — the JSON Schema of the file format (``train:`` and ``expect:`` included) and its
  forms, the source of every reader's field names;
* ``yaml_tree`` — YAML text -> plain values and the line of every key (safe loading only);
* ``validation`` — the kit every reader of netlist data uses (``FieldReader``: FILE:LINE errors);
* ``reader`` — the netlist sections -> ``Netlist`` (``load_netlist``, ``load_netlist_text``);
* ``writer`` — ``Netlist`` -> plain data and YAML (``netlist_to_dict``, ``dump_netlist``);
* ``connectivity`` — a projection's mask and initial weights as arrays.

Placing a netlist on a chip is ``chip.mapping``'s.
"""

from .model import (
    NEURON_MODELS,
    PARAMS_BY_MODEL,
    ALIFParams,
    AllToAll,
    ArrayWeights,
    Connectivity,
    ConstantWeights,
    ExplicitPairs,
    FileInput,
    InputSource,
    LIFParams,
    MembraneRecord,
    Netlist,
    NormalWeights,
    OneToOne,
    PoissonInput,
    Population,
    Projection,
    RandomConnectivity,
    Record,
    SpikeInput,
    UniformWeights,
    Weights,
)
from .reader import load_netlist, load_netlist_text
from .schema import netlist_schema
from .writer import dump_netlist, netlist_to_dict

__all__ = [
    "LIFParams",
    "ALIFParams",
    "Population",
    "InputSource",
    "SpikeInput",
    "PoissonInput",
    "FileInput",
    "Connectivity",
    "AllToAll",
    "OneToOne",
    "RandomConnectivity",
    "ExplicitPairs",
    "Weights",
    "ConstantWeights",
    "NormalWeights",
    "UniformWeights",
    "ArrayWeights",
    "Projection",
    "MembraneRecord",
    "Record",
    "Netlist",
    "NEURON_MODELS",
    "PARAMS_BY_MODEL",
    "load_netlist",
    "load_netlist_text",
    "dump_netlist",
    "netlist_to_dict",
    "netlist_schema",
]
