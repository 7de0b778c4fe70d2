"""The netlist: the logical model of what the user asked for, and its YAML form.

``model`` holds the frozen dataclasses (hardware units); ``io`` reads YAML into them with
``FILE:LINE: field`` errors, writes them back and exports the JSON Schema; ``connectivity``
realizes a projection's mask and initial weights. Placing a netlist on a chip is ``chip.mapping``'s.
"""

from .io import dump_netlist, load_netlist, load_netlist_text, netlist_schema, netlist_to_dict
from .model import (
    NEURON_MODELS,
    Connectivity,
    InputSource,
    MembraneRecord,
    Netlist,
    NeuronParams,
    Population,
    Projection,
    Record,
    WeightInit,
)

__all__ = [
    "NeuronParams",
    "Population",
    "InputSource",
    "Connectivity",
    "WeightInit",
    "Projection",
    "MembraneRecord",
    "Record",
    "Netlist",
    "NEURON_MODELS",
    "load_netlist",
    "load_netlist_text",
    "dump_netlist",
    "netlist_to_dict",
    "netlist_schema",
]
