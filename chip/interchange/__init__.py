"""Other formats in and out: NIR, the neuromorphic intermediate representation.

Job: turn a netlist (with trained weights from a checkpoint, or what a die actually does) into a
NIR graph, and a NIR graph into a netlist, with every unit and scale written down in
``nir_units`` and reported, never guessed silently. Boundary: the ``nir`` package (an optional
extra) is imported only here, and only when one of these functions is called; files are read and
written with ``nir.read`` / ``nir.write``. Building, mapping and running a netlist stay with
``chip.netlist``, ``chip.mapping`` and ``chip.host``.

Modules: ``nir_units`` (time units, the spike conventions of the main exporters, the weight
formula), ``nir_export`` (netlist -> graph), ``nir_import`` (graph -> netlist and a report).
"""

from .nir_export import export_nir, netlist_to_nir
from .nir_import import ImportReport, import_nir, nir_to_netlist
from .nir_units import SPIKE_CONVENTIONS, require_nir

__all__ = ["export_nir", "netlist_to_nir", "import_nir", "nir_to_netlist", "ImportReport", "SPIKE_CONVENTIONS",
           "require_nir"]
