"""The built-in neuron calibration: per-circuit codes that cancel a die's fixed-pattern mismatch.

``plugin`` is the rule (``NeuronCalibration``, entry point ``calibration``, implementing
``chipctl_calibrate``); ``measure`` the measurements through the host, ``search`` the vectorized
code searches, ``bench`` the netlist it measures a chip with, ``targets`` what it aims at, ``run``
a die calibrated end to end into a ``chip.calibration.Calibration``. docs/calibration.md says what
is measured, how, and what calibration cannot fix.
"""

from .bench import bench_netlist
from .plugin import CALIBRATED, NeuronCalibration
from .run import calibrate_die, spread_table
from .targets import DEFAULT_TARGETS, read_targets, targets_of_netlist

__all__ = ["NeuronCalibration", "CALIBRATED", "bench_netlist", "calibrate_die", "spread_table", "DEFAULT_TARGETS",
           "read_targets", "targets_of_netlist"]
