"""The built-in neuron calibration: a plugin implementing ``chipctl_calibrate``.

Job: per population it is given targets for, find per-circuit codes of leak, reset, threshold,
τ_mem and the two τ_syn so that each circuit *measures* its targets, measuring through the host
only (``rules.calibration.measure``) and searching all circuits at once
(``rules.calibration.search``), in calix's order: the CADC's channel offsets first (every other
measurement reads through the CADC), then the potentials, the time constants, and the threshold
last (it is found against a leak calibrated to the threshold's level). Potentials are brought to
a level as the CADC reads it: by default the level the die's median circuit reads at the target's
nominal code (so the die keeps the scale its codes give it, whatever its CADC's slope), or the
target itself (option ``anchor: cadc``, calix's absolute targets). Before and after, each
parameter is measured with the same measurement, nominal codes against calibrated ones, and its
spread reported; circuits that cannot reach a target are reported one by one, their code left at
the best one found.

Boundary: writes codes with ``host.write_codes`` and nothing else of the chip's configuration
survives it (weights and parameters it touched to measure are put back); the file a calibration
becomes is ``chip.calibration``'s.
"""

from __future__ import annotations

import time

import numpy as np

from ..api import Rule
from ..hookspecs import hookimpl
from .measure import Bench, trimmed_std
from .search import bisect_codes, secant_search

__all__ = ["NeuronCalibration", "CALIBRATED", "TOLERANCE"]

#: what this calibration can calibrate, in the order it does it
CALIBRATED = ("v_leak", "v_reset", "tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us", "v_threshold")

#: how far from its target a circuit may stay before it is reported as not reached: model units
#: for potentials (3 mV on bss2, below one CADC code), relative for time constants — about five
#: times what the measurements' noise leaves, so that a report means the target is out of reach
TOLERANCE = {"v_leak": 0.01, "v_reset": 0.01, "v_threshold": 0.01, "tau_mem_us": 0.05, "tau_syn_exc_us": 0.05,
             "tau_syn_inh_us": 0.05}

_KIND = {"v_leak": "potential", "v_reset": "potential", "v_threshold": "potential", "tau_mem_us": "time",
         "tau_syn_exc_us": "time", "tau_syn_inh_us": "time"}


class NeuronCalibration(Rule):
    name = "calibration"
    description = ("Per-circuit codes for leak, reset, threshold, tau_mem and tau_syn, measured through the host "
                   "(CADC reads, spikes, decay fits), searched for all circuits at once.")
    options = {
        "batch": (16, "samples per measurement run (tau_mem uses three, tau_syn four times as many)"),
        "iterations": (4, "search steps per potential (time constants take one fewer)"),
        "report": (True, "measure every parameter before (nominal codes) and after, and report the spreads"),
        "psp_inh": (0.5, "current of the single PSP tau_syn_inh is measured with, in units of a full-scale synapse: the "
                         "inhibitory input saturates (bss2: I_sat 4), which bends a PSP of 1 enough to bias the fit "
                         "0.7 % short; the measurement takes (1/psp)^2 times the samples, so its noise stays the same"),
        "psp_exc": (1.0, "the same for tau_syn_exc (bss2: I_sat 12, a bias of 0.1 % at 1)"),
        "anchor": ("median", "what potentials are brought to: 'median', the level the die's median circuit reads "
                             "at the target's nominal code (the die keeps the scale its codes give it), or 'cadc', "
                             "the target as the CADC reads it (calix's absolute targets; they carry the die's CADC "
                             "slope)"),
    }

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        host = context.host
        out = {}
        for population, wanted in targets.items():
            if population not in host.populations:
                raise ValueError(f"no population {population!r} to calibrate; the chip has "
                                 f"{', '.join(host.populations)}")
            unknown = [name for name in wanted if name not in CALIBRATED]
            if unknown:
                raise ValueError(f"cannot calibrate {', '.join(unknown)}; this calibration knows "
                                 f"{', '.join(CALIBRATED)}")
            out[population] = _Calibrator(host, population, wanted, context.options,
                                          getattr(context, "progress", None)).run()
        return out


class _Calibrator:
    """One population's calibration: the order of the steps, progress and the report."""

    def __init__(self, host, population: str, targets: dict, options: dict, progress):
        self.host = host
        self.pop = population
        self.targets = {name: float(targets[name]) for name in CALIBRATED if name in targets}
        self.options = options
        self.report_spreads = bool(options.get("report", True))
        self.anchor = str(options.get("anchor", "median"))
        if self.anchor not in ("median", "cadc"):
            raise ValueError(f"option anchor must be median or cadc, got {self.anchor!r}")
        self.levels: dict[str, float] = {}
        self.iterations = int(options.get("iterations", 4))
        self.psp = {kind: float(options.get(f"psp_{kind}", default)) for kind, default in (("exc", 1.0), ("inh", 0.5))}
        for kind, psp in self.psp.items():
            if not 0.05 <= psp <= 2.0:
                raise ValueError(f"option psp_{kind} must be from 0.05 to 2 (a synapse's full scale), got {psp!r}")
        self.listener = progress
        self.done_runs = 0
        self.bench = Bench(host, population, batch=int(options.get("batch", 16)), progress=self._tick)
        self.expected_runs = self._expected_runs()
        if self.bench.stimulus is None and any(n.startswith("tau_") for n in self.targets):
            raise ValueError(f"measuring time constants needs an input with an excitatory and an inhibitory "
                             f"projection onto every neuron of {population!r} (rules.calibration.bench_netlist "
                             "makes such a chip)")

    # ------------------------------------------------------------------ progress
    def _expected_runs(self) -> int:
        per = {"v_leak": self.iterations, "v_reset": self.iterations, "tau_mem_us": self.iterations - 1,
               "tau_syn_exc_us": self.iterations - 1, "tau_syn_inh_us": self.iterations - 1,
               "v_threshold": self.iterations + 10}
        measure = {"v_leak": 1, "v_reset": 1, "tau_mem_us": 1, "tau_syn_exc_us": 1, "tau_syn_inh_us": 1,
                   "v_threshold": 12}
        total = sum(per[n] for n in self.targets)
        if self.report_spreads:
            total += 2 * sum(measure[n] for n in self.targets)
        elif self.anchor == "median":  # the potentials' levels are measured at the nominal codes
            total += sum(measure[n] for n in self.targets if n.startswith("v_"))
        return max(total, 1)

    def _tick(self, status: str) -> None:
        self.done_runs += 1
        if self.listener is not None:
            self.listener(min(self.done_runs / self.expected_runs, 0.99), f"{self.pop}: {status}")

    # ------------------------------------------------------------------ the steps
    def run(self) -> dict:
        start = time.perf_counter()
        bench, host, pop = self.bench, self.host, self.pop
        saved = {name: host.read_codes(pop, name) for name in ("tau_ref_us", "weight_full_scale")}
        nominal = {}
        for name, target in self.targets.items():
            host.write_params(pop, name, target)
            nominal[name] = host.read_codes(pop, name)
        offsets = bench.measure_cadc_offsets()
        before = self._measure_all() if self.report_spreads else {}
        # what each potential is brought to, as the CADC reads it (NaN: nothing can be)
        for name in ("v_leak", "v_reset", "v_threshold"):
            if name not in self.targets:
                continue
            if self._beyond_rails(self.targets[name]):
                self.levels[name] = float("nan")
            elif self.anchor == "cadc":
                self.levels[name] = self.targets[name]
            else:
                at_nominal = before[name] if name in before else self._measure_all((name,))[name]
                readable = np.isfinite(at_nominal)
                # a level read on a minority of the circuits says nothing about the others
                self.levels[name] = float(np.median(at_nominal[readable])) if readable.mean() > 0.5 else float("nan")
        # every parameter from its nominal code: the targets as written
        for name, codes in nominal.items():
            host.write_codes(pop, name, codes)
        results = {}
        for name in CALIBRATED:
            if name in self.targets:
                results[name] = self._calibrate(name, nominal[name])
                host.write_codes(pop, name, results[name]["codes"])
        after = self._measure_all() if self.report_spreads else {}
        for name, codes in saved.items():
            host.write_codes(pop, name, codes)
        if bench.stimulus is not None:
            bench.stimulus_weights()

        parameters = {}
        for name, res in results.items():
            entry = {"target": self.targets[name], "kind": _KIND[name], "codes": res["codes"],
                     "steps": res["steps"], "unreached": res["unreached"]}
            if name in self.levels:
                entry["anchor"], entry["level"] = self.anchor, self.levels[name]
            if self.report_spreads:
                entry["before"] = _stats(before[name])
                entry["after"] = _stats(after[name])
                b, a = entry["before"]["spread"], entry["after"]["spread"]
                entry["ratio"] = a / b if b > 0 else float("nan")
            parameters[name] = entry
        if self.listener is not None:
            self.listener(1.0, f"{pop}: done")
        return {
            "population": pop, "circuits": host.circuits(pop).tolist(), "parameters": parameters,
            "cadc_offsets": {"spread_codes": float(np.std(offsets)), "max_codes": float(np.abs(offsets).max())},
            "runs": bench.counts.runs, "emulated_us": bench.counts.emulated_us,
            "neuron_steps": bench.counts.neuron_steps, "wall_s": time.perf_counter() - start,
            "spread": "standard deviation after cutting 5 % of the circuits from each tail (as calix's tests)",
        }

    def _beyond_rails(self, target: float) -> bool:
        """Whether a potential's target is outside the membrane's rails (the profile's public
        range): no code can hold a membrane there, and the rail would read as if it did."""
        p = self.host.profile
        if not p.nonidealities.membrane_rails:
            return False
        volts = p.v_model_zero_v + target * (p.v_model_one_v - p.v_model_zero_v)
        low, high = p.membrane_rails_v
        return not low <= volts <= high

    def _measure_all(self, names=CALIBRATED) -> dict:
        """Every targeted parameter (of ``names``) measured once with the codes as they are now."""
        bench = self.bench
        out = {}
        for name in CALIBRATED:
            if name not in self.targets or name not in names:
                continue
            target = self.targets[name]
            if name == "v_leak":
                out[name] = bench.rest(status="measuring leak")[0]
            elif name == "v_reset":
                out[name] = bench.reset(status="measuring reset")
            elif name == "tau_mem_us":
                out[name] = bench.tau_mem(target, status="measuring tau_mem")
            elif name.startswith("tau_syn"):
                kind = name.split("_")[2]
                out[name] = self._tau_syn(kind, target, f"measuring tau_syn_{kind}")
            elif name == "v_threshold":
                out[name] = self._measure_threshold(target)
        return out

    def _calibrate(self, name: str, start) -> dict:
        bench, target = self.bench, self.targets[name]
        transfer = bench.transfer(name)
        log = name.startswith("tau_")
        if name == "v_threshold":
            return self._calibrate_threshold(target, self.levels[name], transfer)
        goal = self.levels.get(name, target)

        def measure(codes):
            bench.set_codes(name, codes)
            if name == "v_leak":
                return bench.rest(status="leak")[0]
            if name == "v_reset":
                return bench.reset(status="reset")
            if name == "tau_mem_us":
                return bench.tau_mem(target, status="tau_mem")
            kind = name.split("_")[2]
            return self._tau_syn(kind, target, f"tau_syn_{kind}")

        iterations = self.iterations - (1 if log else 0)
        stop = 0.2 * TOLERANCE[name]
        found = secant_search(measure, goal, start, transfer, log=log, iterations=max(iterations, 1), stop=stop)
        return {"codes": found.codes, "steps": found.steps,
                "unreached": self._unreached(name, goal, found.codes, found.values)}

    def _tau_syn(self, kind: str, target: float, status: str) -> np.ndarray:
        """τ_syn of every circuit's ``kind`` input, from a PSP of the option's current and with
        (1/psp)² times the samples of a PSP of 1: the saturating input bends a large PSP (a bias
        of the fit), a small one is noisier by 1/psp."""
        psp = self.psp[kind]
        batch = max(1, int(round(4 * self.bench.batch / psp ** 2)))
        return self.bench.tau_syn(kind, target, psp=psp, batch=batch, status=status)

    def _unreached(self, name, goal, codes, values) -> list:
        """The circuits further from ``goal`` (the target, or a potential's level) than the
        tolerance, one entry each."""
        if name.startswith("tau_"):
            with np.errstate(invalid="ignore", divide="ignore"):
                off = ~(np.abs(values / goal - 1.0) <= TOLERANCE[name])
        else:
            off = ~(np.abs(values - goal) <= TOLERANCE[name])
        why = self._why_no_level(name) if not np.isfinite(goal) else None
        circuits = self.host.circuits(self.pop)
        out = []
        for i in np.nonzero(off)[0]:
            entry = {"circuit": int(circuits[i]), "neuron": int(i), "target": self.targets[name],
                     "reached": None if not np.isfinite(values[i]) else float(values[i]), "code": float(codes[i])}
            if name in self.levels and np.isfinite(goal):
                entry["level"] = float(goal)
            if why:
                entry["why"] = why
            out.append(entry)
        return out

    def _why_no_level(self, name: str) -> str:
        if self._beyond_rails(self.targets[name]):
            return "the target is beyond the membrane's rails"
        return "at the target's nominal code most circuits read outside the CADC's reliable range"

    # ------------------------------------------------------------------ the threshold
    def _threshold_setup(self) -> None:
        """Leak at the threshold's level comes later; the reset below it, the refractory time short."""
        bench = self.bench
        bench.set_value("tau_ref_us", bench.value_range("tau_ref_us")[0])

    def _calibrate_threshold(self, target: float, level: float, transfer) -> dict:
        """Leak calibrated to read the threshold's ``level``, then per circuit the lowest threshold
        code at which the neuron, starting from rest, no longer spikes in most samples of a short
        run: the threshold sits at the resting level (calix's leak-over-threshold idea, decided by
        spikes). The decision is within the membrane noise of the level; a margin common to all
        circuits."""
        bench, host, pop = self.bench, self.host, self.pop
        saved = {name: host.read_codes(pop, name) for name in ("v_leak", "v_reset", "tau_ref_us")}
        leak = bench.transfer("v_leak")

        def rest_at(codes):
            bench.set_codes("v_leak", codes)
            return bench.rest(status="leak at the threshold")[0]

        leveled = secant_search(rest_at, level, np.full(bench.n, leak.code(target)), leak, iterations=self.iterations,
                              stop=0.2 * TOLERANCE["v_leak"])
        bench.set_codes("v_leak", leveled.codes)
        self._threshold_setup()
        bench.set_value("v_reset", target - 1.0)

        def spikes(codes):
            bench.set_codes("v_threshold", codes)
            return bench.spike_fraction(status="threshold") >= 0.5

        start = np.full(bench.n, transfer.code(target))
        codes, found = bisect_codes(spikes, start - 64, start + 64, top=transfer.top if transfer.quantized else 1e30)
        for name, value in saved.items():
            host.write_codes(pop, name, value)
        # where the level could not be set (the leak does not get there, or the CADC cannot read
        # it) or no code flips the neuron, the threshold keeps its nominal code: reported, not guessed
        leak_off = ~(np.abs(leveled.values - level) <= TOLERANCE["v_leak"])
        failed = leak_off | ~found | (codes <= 0)
        codes = np.where(failed, start, codes)
        unreached = []
        circuits = host.circuits(pop)
        for i in np.nonzero(failed)[0]:
            why = ("the leak cannot be brought to the threshold's level, or the CADC cannot read it there"
                   if leak_off[i] else "no threshold code stops the spikes" if not found[i] else
                   "even the lowest threshold code is above the level")
            if not np.isfinite(level):
                why = self._why_no_level("v_threshold")
            entry = {"circuit": int(circuits[i]), "neuron": int(i), "target": target,
                     "reached": None if not np.isfinite(leveled.values[i]) else float(leveled.values[i]),
                     "code": float(codes[i]), "why": why + "; left at the nominal code"}
            if np.isfinite(level):
                entry["level"] = float(level)
            unreached.append(entry)
        return {"codes": codes, "steps": leveled.steps + 1, "unreached": unreached}

    def _measure_threshold(self, target: float) -> np.ndarray:
        """Each circuit's threshold with its threshold codes as they are: the resting level (leak
        codes searched by bisection) from which the neuron starts to spike in most samples of a
        short run, read through the CADC — the mean of the resting reads just below and at that
        level."""
        bench, host, pop = self.bench, self.host, self.pop
        saved = {name: host.read_codes(pop, name) for name in ("v_leak", "v_reset", "tau_ref_us", "v_threshold")}
        leak = bench.transfer("v_leak")
        self._threshold_setup()
        bench.set_value("v_reset", target - 1.0)

        def quiet(codes):
            bench.set_codes("v_leak", codes)
            bench.set_codes("v_threshold", saved["v_threshold"])
            return bench.spike_fraction(status="measuring threshold") < 0.5

        start = np.full(bench.n, leak.code(target))
        codes, found = bisect_codes(quiet, start - 64, start + 64, top=leak.top if leak.quantized else 1e30)
        bench.set_codes("v_leak", np.maximum(codes - 1, 0))
        below = bench.rest(status="measuring threshold")[0]
        bench.set_codes("v_leak", codes)
        at = bench.rest(status="measuring threshold")[0]
        for name, value in saved.items():
            host.write_codes(pop, name, value)
        return np.where(found, 0.5 * (below + at), np.nan)


def _stats(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return {"mean": float(np.mean(finite)) if len(finite) else float("nan"),
            "spread": trimmed_std(values),
            "std": float(np.std(finite)) if len(finite) else float("nan"),
            "unmeasured": int(np.sum(~np.isfinite(values))),
            "values": values.tolist()}
