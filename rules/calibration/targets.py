"""Calibration targets: what each circuit's parameters should measure, and where they come from.

Job: the default operating point, reading a targets file (``chipctl calibrate --targets``) with the
netlist's spellings and units and its ``FILE:LINE: field:`` errors, and the targets a netlist's
populations use. Values are in the netlist's model units (leak 0, threshold 1) and hardware µs.
Boundary: no measuring; whether a target can be reached is found out per circuit by the
calibration and reported, never clipped here.
"""

from __future__ import annotations

from pathlib import Path

from chip.errors import NetlistError

__all__ = ["DEFAULT_TARGETS", "TARGET_KEYS", "read_targets", "targets_of_netlist", "show_target"]

#: the operating point of BrainScaleS-2's EventProp example (jaxsnn yinyang_bss2, and
#: netlists/yinyang_bss2.yaml): leak and reset at 0, threshold at 1, τ_mem 12 µs, τ_syn 6 µs
DEFAULT_TARGETS: dict[str, float] = {
    "v_leak": 0.0,
    "v_reset": 0.0,
    "v_threshold": 1.0,
    "tau_mem_us": 12.0,
    "tau_syn_exc_us": 6.0,
    "tau_syn_inh_us": 6.0,
}

#: a targets file's keys (the netlist's parameter spellings) -> the parameters they set
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "v_leak": ("v_leak",),
    "v_reset": ("v_reset",),
    "v_threshold": ("v_threshold",),
    "tau_mem": ("tau_mem_us",),
    "tau_syn": ("tau_syn_exc_us", "tau_syn_inh_us"),
    "tau_syn_exc": ("tau_syn_exc_us",),
    "tau_syn_inh": ("tau_syn_inh_us",),
}


def show_target(name: str, value: float) -> str:
    """A target as a netlist would write it (``tau_mem 12 us``, ``v_leak 0``)."""
    key = name[:-3] if name.endswith("_us") else name
    return f"{key} {value:g} us" if name.endswith("_us") else f"{key} {value:g}"


def read_targets(path: str | Path) -> dict[str, float]:
    """A targets file: a mapping of the keys of ``TARGET_KEYS`` to values (voltages in model units,
    times with a unit, ``tau_syn`` sets both synaptic time constants); keys left out keep their
    default (``DEFAULT_TARGETS``), ``null`` leaves that parameter uncalibrated. Errors read
    ``FILE:LINE: field: what is wrong``."""
    from chip.netlist.validation import FieldReader
    from chip.netlist.yaml_tree import parse_yaml

    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetlistError("targets file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlistError(f"cannot read targets: {exc}", file=file) from None
    raw, tree = parse_yaml(text, file)
    reader = FieldReader(file, tree.lines)
    raw = reader.mapping({} if raw is None else raw, "", "a mapping of parameters to targets")
    if "tau_syn" in raw and ("tau_syn_exc" in raw or "tau_syn_inh" in raw):
        reader.fail("tau_syn", "tau_syn sets both tau_syn_exc and tau_syn_inh; give either it or them")
    targets = dict(DEFAULT_TARGETS)
    for key, value in raw.items():
        if key not in TARGET_KEYS:
            reader.fail(key, f"unknown target '{key}'; known: {', '.join(TARGET_KEYS)}")
        for name in TARGET_KEYS[key]:
            if value is None:
                targets.pop(name, None)
            elif name.endswith("_us"):
                targets[name] = reader.time(value, key, positive=True)
            else:
                targets[name] = reader.number(value, key)
    if not targets:
        reader.fail("", "every target is null: nothing to calibrate")
    return targets


def targets_of_netlist(netlist, parameters=tuple(DEFAULT_TARGETS)) -> dict[str, float]:
    """The values a netlist's populations use for ``parameters``, which must be the same in every
    population (one calibration holds one target per parameter); NetlistError otherwise."""
    targets: dict[str, float] = {}
    for pop_name, pop in netlist.populations.items():
        for name in parameters:
            value = float(getattr(pop.params, name))
            if targets.setdefault(name, value) != value:
                raise NetlistError(f"populations use different {show_target(name, value).split()[0]} "
                                   f"({targets[name]:g} and {value:g} in {pop_name!r}): one calibration "
                                   "holds one target per parameter", file=netlist.source_path,
                                   field=f"populations.{pop_name}.params")
    return targets
