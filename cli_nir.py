"""``chipctl export-nir`` and ``chipctl import-nir``: netlists to and from NIR files.

Thin shells over ``chip.interchange`` (the mapping tables and units live there); registered on
the main app by ``register``. The ``nir`` package is an optional extra, imported only when one of
these commands runs; without it they say so in one line (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import typer

__all__ = ["register"]

_OUT_NIR = typer.Option(..., "-o", "--out", help="NIR file to write (HDF5, usually .nir).")
_CHECKPOINT = typer.Option(None, "--checkpoint", help="Training checkpoint directory: its trained weights and parameters.")
_REALIZED = typer.Option(False, "--realized", help="What this die does (quantized, mismatched), not nominal values.")
_EXPORT_TIME_SCALE = typer.Option(1.0, "--time-scale", help="NIR time = chip time x this (1000: chip us become model ms).")
_IMPORT_TIME_SCALE = typer.Option(None, "--time-scale", help="Chip time = NIR time / this (1000: model ms become chip "
                                                             "us); default: what a chipctl export wrote, else 1.")
_SPIKES = typer.Option("auto", "--spikes", help="What a spike is: auto, dirac (NIR's unit area), step (area dt, "
                                                "snnTorch) or jump (adds w_in*w, Norse).")


def register(app: typer.Typer, guard: Callable, load: Callable) -> None:
    """Add the two commands to ``app``; ``guard`` turns chipctl errors into one line and exit 2,
    ``load`` loads a netlist with the usual overrides."""

    @app.command("export-nir")
    def export_nir(netlist: Path = typer.Argument(..., help="Netlist YAML file."),
                   out: Path = _OUT_NIR, checkpoint: Optional[Path] = _CHECKPOINT, realized: bool = _REALIZED,
                   time_scale: float = _EXPORT_TIME_SCALE,
                   profile: Optional[str] = typer.Option(None, "--profile", help="Chip profile instead of the netlist's."),
                   die_seed: Optional[int] = typer.Option(None, "--die-seed", help="Seed of the die (with --realized)."),
                   as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")):
        """Write a netlist as a NIR graph: a CubaLIF per population, a Linear per projection (times in s)."""

        def body():
            from chip.interchange import export_nir as write

            nl = load(netlist, profile, die_seed, None, None)
            config = None
            if checkpoint is not None:
                from rules.training.checkpoints import load_checkpoint

                config = load_checkpoint(checkpoint).get("chip")
            summary = write(nl, out, config=config, realized=realized, time_scale=time_scale,
                            source=str(checkpoint) if checkpoint is not None else None)
            if as_json:
                typer.echo(json.dumps(summary))
            else:
                nodes = ", ".join(f"{n} {k}" for k, n in summary["nodes"].items())
                typer.echo(f"{out}: {nodes}; {summary['values']} values of {summary['profile']} "
                           f"(die {summary['die_seed']}), times in s x {time_scale:g}")

        guard(body)

    @app.command("import-nir")
    def import_nir(model: Path = typer.Argument(..., help="NIR file (HDF5)."),
                   out: Path = typer.Option(..., "-o", "--out", help="Netlist YAML file to write."),
                   profile: str = typer.Option("bss2", "--profile", help="Chip profile to map onto (bss2, ideal)."),
                   time_scale: Optional[float] = _IMPORT_TIME_SCALE, spikes: str = _SPIKES,
                   dt: Optional[float] = typer.Option(None, "--dt", help="The exporter's time step in s (--spikes step)."),
                   duration: Optional[float] = typer.Option(None, "--duration-us", help="Run duration, chip us."),
                   as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
        """Turn a NIR graph into a netlist; report the spike convention assumed and the weight rounding."""

        def body():
            from chip.errors import ChipctlError
            from chip.interchange import import_nir as read
            from chip.netlist import dump_netlist
            from chip.profiles import get_profile

            try:
                chip = get_profile(profile)
            except KeyError as exc:
                raise ChipctlError(exc.args[0]) from None
            netlist, report = read(model, chip, time_scale=time_scale, spikes=spikes, dt_s=dt, duration_us=duration)
            try:
                out.write_text(dump_netlist(netlist), encoding="utf-8")
            except OSError as exc:
                raise ChipctlError(f"{out}: cannot write: {exc.strerror or exc}") from None
            if as_json:
                typer.echo(json.dumps({"netlist": str(out), **report.to_dict()}))
            else:
                pops, projs = len(netlist.populations), len(netlist.projections)
                typer.echo(f"{out}: {pops} population{'s' * (pops != 1)}, {projs} projection{'s' * (projs != 1)} "
                           f"on {chip.name}")
                for line in report.lines():
                    typer.echo(f"  {line}")

        guard(body)
