"""``chipctl``: the command line front end (typer).

Every command is a thin shell over the host interface and the rule/test machinery. Bad input of
any kind (a ``ChipctlError``) becomes one line ``FILE:LINE: field: what is wrong`` on stderr and
exit code 2; ``--debug`` shows the traceback instead. ``--json`` prints one JSON object on stdout
and nothing else there (progress goes to stderr).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Emulate an analog neuromorphic core: run netlists, train with rule plugins, keep regression tests.")

_state = {"debug": False}


class _Notices(logging.Handler):
    """Library notices (``logging.getLogger("chip")``, e.g. that the step loop is being compiled)
    as 'chipctl: ...' lines on whatever stderr is at the time; stdout stays clean for --json."""

    def emit(self, record):
        typer.echo(f"chipctl: {record.getMessage()}", err=True)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")):
    _state["debug"] = debug
    log = logging.getLogger("chip")
    if not any(isinstance(h, _Notices) for h in log.handlers):
        log.addHandler(_Notices())
        log.setLevel(logging.INFO)


def _fail(message: str, code: int = 2):
    typer.echo(f"chipctl: {message}" if not message.startswith(("/", ".", "<")) and ":" not in message.split(" ")[0]
               else message, err=True)
    raise typer.Exit(code)


def _guard(fn: Callable):
    """Run a command body, turning chipctl's own errors into one line and exit 2."""
    from chip.errors import ChipctlError

    try:
        return fn()
    except ChipctlError as exc:
        if _state["debug"]:
            raise
        _fail(exc.one_line())
    except KeyboardInterrupt:
        typer.echo("chipctl: interrupted", err=True)
        raise typer.Exit(130)


class _Progress:
    """A progress bar on stderr that appears only once work has taken longer than ``after_s``."""

    def __init__(self, label: str, after_s: float = 2.0, enabled: bool = True):
        self.label = label
        self.after_s = after_s
        self.enabled = enabled and sys.stderr.isatty() or os.environ.get("CHIPCTL_PROGRESS") == "1"
        self.start = time.perf_counter()
        self.bar = None
        self.task = None

    def __call__(self, fraction: float, status: str = "") -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.start < self.after_s:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=1.0, status=status)
        self.bar.update(self.task, completed=fraction, status=status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _load(netlist: Path, profile, die_seed, noise_seed, batch):
    from chip.netlist import load_netlist

    return load_netlist(netlist, profile=profile, die_seed=die_seed, noise_seed=noise_seed, batch=batch)


_NETLIST = typer.Argument(..., help="Netlist YAML file.", exists=False)
_PROFILE = typer.Option(None, "--profile", help="Chip profile to use instead of the netlist's (bss2, ideal).")
_DIE = typer.Option(None, "--die-seed", help="Seed of the die's fixed-pattern mismatch.")
_NOISE = typer.Option(None, "--noise-seed", help="Seed of the temporal noise.")


@app.command()
def run(netlist: Path = _NETLIST,
        out: Optional[Path] = typer.Option(None, "--out", help="Write spikes.npz, traces.npz and summary.json here."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
        batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Samples in the batch."),
        die_seed: Optional[int] = _DIE, noise_seed: Optional[int] = _NOISE, profile: Optional[str] = _PROFILE,
        update_golden: bool = typer.Option(False, "--update-golden",
                                           help="Write the run's spikes as the netlist's golden file.")):
    """Run a netlist on the emulated chip and summarise the spikes."""

    def body():
        from chip.host import HostInterface
        from chip.output import summarize, write_outputs

        t_start = time.perf_counter()
        nl = _load(netlist, profile, die_seed, noise_seed, batch)
        host = HostInterface(nl)
        bar = _Progress(f"running {nl.name}")
        try:
            result = host.run(progress=lambda f: bar(f))
        finally:
            bar.close()
        summary = summarize(host, result, wall_s=time.perf_counter() - t_start)
        if out is not None:
            write_outputs(out, host, result, summary)
        if update_golden:
            from regression.runner import write_golden

            path = write_golden(nl, result)
            summary["golden"] = str(path)
        if as_json:
            typer.echo(json.dumps(summary, indent=None, sort_keys=True))
        else:
            _print_summary(summary, out)

    _guard(body)


def _print_summary(summary: dict, out: Optional[Path]) -> None:
    unit = "Hz" if summary["timescale"] == "hardware" else "Hz (biological)"
    typer.echo(f"{summary['netlist']}: {summary['profile']} chip, batch {summary['batch']}, "
               f"{summary['emulated_us']:.3f} us emulated in {summary['wall_s']:.2f} s")
    width = max([len(p) for p in summary["populations"]] + [10])
    for name, pop in summary["populations"].items():
        typer.echo(f"  {name:<{width}}  {pop['size']:>6} neurons  {pop['spikes']:>8} spikes  {pop['rate_hz']:>12.2f} {unit}")
    typer.echo(f"  events offered {summary['offered_events']}, dropped {summary['dropped_events']}")
    for link in summary.get("links", []):
        if link["dropped"]:
            typer.echo(f"    link {link['name']}: offered {link['offered']}, dropped {link['dropped']}")
    if out is not None:
        typer.echo(f"  wrote {out}/spikes.npz, summary.json" + (", traces.npz" if summary.get("traces") else ""))


@app.command()
def test(paths: Optional[list[Path]] = typer.Argument(None, help="Netlist files or folders (default: .)."),
         update_golden: bool = typer.Option(False, "--update-golden",
                                            help="Make each run's spikes its golden entry, then check."),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="Print the full diff of every failure."),
         slow: bool = typer.Option(False, "--slow", help="Also make the runs marked slow: true.")):
    """Run netlist regression tests: every netlist with an expect: section (exit 1 if any fails)."""

    def body():
        from regression.runner import discover, run_netlist, summary_line, verdict

        start = time.perf_counter()
        counts = {"PASS": 0, "FAIL": 0, "ERROR": 0, "SKIP": 0}
        for path in discover(paths or [Path(".")]):
            outcomes = run_netlist(path, update_golden=update_golden, slow=slow)
            counts[verdict(outcomes)] += 1
            typer.echo(summary_line(path, outcomes))
            if verbose:
                for outcome in outcomes:
                    if not outcome.passed:
                        typer.echo("\n".join("    " + l for l in outcome.report().splitlines()))
        skipped = f", {counts['SKIP']} skipped (slow)" if counts["SKIP"] else ""
        typer.echo(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['ERROR']} bad input{skipped} "
                   f"in {time.perf_counter() - start:.1f} s")
        if counts["ERROR"]:
            raise typer.Exit(2)
        if counts["FAIL"]:
            raise typer.Exit(1)

    _guard(body)


@app.command()
def validate(netlist: Path = _NETLIST, profile: Optional[str] = _PROFILE,
             as_json: bool = typer.Option(False, "--json", help="Print the mapped summary as JSON.")):
    """Check a netlist: format (its train: and expect: blocks too), references, and that it fits
    the chip (it is mapped, not run)."""

    def body():
        from chip.mapping import graph_summary, map_netlist

        nl = _load(netlist, profile, None, None, None)
        if nl.train is not None:
            from rules.training.config import validate_train

            validate_train(nl)
        if nl.expect is not None:
            from regression.expectations import parse_expect

            parse_expect(nl)
        mapped = map_netlist(nl)
        summary = graph_summary(mapped)
        if as_json:
            typer.echo(json.dumps({"netlist": nl.name, "ok": True, **_jsonable(summary)}))
        else:
            typer.echo(f"{netlist}: ok — {nl.chip.name} chip, {mapped.n_circuits} neurons on "
                       f"{sum(p.size for p in nl.populations.values())} circuits, "
                       f"{len(nl.projections)} projections, {len(mapped.links)} links")

    _guard(body)


@app.command()
def schema():
    """Print the netlist format as JSON Schema."""
    from chip.netlist import netlist_schema

    typer.echo(json.dumps(netlist_schema(), indent=2))


@app.command()
def graph(netlist: Path = _NETLIST, profile: Optional[str] = _PROFILE,
          graphml: Optional[Path] = typer.Option(None, "--graphml", help="Write the routing graph as GraphML."),
          as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")):
    """Summarise the mapped routing graph (nodes, links, rows used) and optionally write it."""

    def body():
        from chip.mapping import graph_summary, map_netlist, write_graphml

        nl = _load(netlist, profile, None, None, None)
        mapped = map_netlist(nl)
        summary = _jsonable(graph_summary(mapped))
        if graphml is not None:
            write_graphml(mapped, graphml)
            summary["graphml"] = str(graphml)
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            for key, value in summary.items():
                if isinstance(value, (list, dict)):
                    typer.echo(f"{key}:")
                    items = value.items() if isinstance(value, dict) else enumerate(value)
                    for k, v in items:
                        nested = {a: b for a, b in v.items() if isinstance(b, list)} if isinstance(v, dict) else {}
                        if not nested:
                            typer.echo(f"  {k}: {v}")
                            continue
                        # a half's rows, then one line per bus
                        typer.echo(f"  {k}: { {a: b for a, b in v.items() if a not in nested} }")
                        for entries in nested.values():
                            for entry in entries:
                                typer.echo(f"    {entry}")
                else:
                    typer.echo(f"{key}: {value}")

    _guard(body)


@app.command()
def train(netlist: Path = _NETLIST,
          as_json: bool = typer.Option(False, "--json", help="Print final metrics as one JSON object on stdout."),
          rule: list[str] = typer.Option([], "--rule", help="Add a rule by name or module:Class (repeatable)."),
          checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint directory (overrides train.checkpoint)."),
          resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint."),
          epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Override train.epochs."),
          picture: Optional[Path] = typer.Option(
              None, "--picture", help="Autoencoder tasks: the PNG of originals beside reconstructions "
                                      "(default: reconstructions.png in the checkpoint directory, else NAME_reconstructions.png)."),
          die_seed: Optional[int] = _DIE, noise_seed: Optional[int] = _NOISE, profile: Optional[str] = _PROFILE):
    """Train the netlist's chip in the loop with its train: block (rules, data, optimizer)."""

    def body():
        from rules.training import Trainer

        nl = _load(netlist, profile, die_seed, noise_seed, None)
        bar = _Progress(f"training {nl.name}", after_s=0.0)
        trainer = Trainer(nl, extra_rules=tuple(rule), checkpoint=checkpoint, epochs=epochs, progress=bar)
        if resume:
            trainer.resume()
        try:
            metrics = trainer.fit()
        finally:
            bar.close()
        out = {"netlist": nl.name, "profile": nl.chip.name, "epochs": metrics["epochs"],
               "train_accuracy": metrics["train_accuracy"], "test_accuracy": metrics["test_accuracy"],
               "test_acc": metrics["test_accuracy"],  # the short name scripts read
               "train_loss": metrics["train_loss"], "wall_s": metrics["wall_s"],
               "checkpoint": str(trainer.checkpoint_dir) if trainer.checkpoint_dir else None,
               "history": metrics["history"]}
        for key in ("dead_fraction", "bursting_fraction", "reconstruction_mse"):
            if key in metrics:
                out[key] = metrics[key]
        if hasattr(trainer.task, "targets"):
            out["picture"] = _reconstruction_picture(trainer, nl, picture)
        if as_json:
            typer.echo(json.dumps(_jsonable(out)))
        else:
            for h in metrics["history"]:
                test = f"  test {h['test_accuracy']:.3f}" if "test_accuracy" in h else ""
                typer.echo(f"epoch {h['epoch']:>3}: loss {h['train_loss']:.4f}  train {h['train_accuracy']:.3f}{test}"
                           f"  ({h['epoch_wall_s']:.1f} s)")
            if "dead_fraction" in metrics:
                mse = f", reconstruction MSE {metrics['reconstruction_mse']:.4f}" if "reconstruction_mse" in metrics else ""
                typer.echo(f"hidden neurons: {metrics['dead_fraction']:.1%} dead, "
                           f"{metrics['bursting_fraction']:.1%} bursting{mse}"
                           + (f"; picture {out['picture']}" if out.get("picture") else ""))
            typer.echo(f"{nl.name}: {metrics['epochs']} epochs in {metrics['wall_s']:.1f} s"
                       + (f", checkpoint in {trainer.checkpoint_dir}" if trainer.checkpoint_dir else ""))

    _guard(body)


def _reconstruction_picture(trainer, nl, picture: Optional[Path]) -> Optional[str]:
    """Write originals beside reconstructions (needs matplotlib; without it, one notice line)."""
    from rules.training.picture import write_reconstructions

    if picture is None:
        picture = (trainer.checkpoint_dir / "reconstructions.png" if trainer.checkpoint_dir
                   else Path(f"{nl.name}_reconstructions.png"))
    originals, recons = trainer.reconstructions(10)
    written = write_reconstructions(picture, originals, recons,
                                    title=f"{nl.name}: test MSE {trainer.health.get('reconstruction_mse', float('nan')):.4f}")
    if written is None:
        typer.echo("chipctl: no reconstruction picture: matplotlib is not installed (pip install matplotlib)", err=True)
        return None
    return str(written)


@app.command("eval")
def eval_(netlist: Path = _NETLIST,
          checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint directory of a trained chip."),
          as_json: bool = typer.Option(False, "--json", help="Print the accuracy as JSON."),
          die_seed: Optional[int] = _DIE, noise_seed: Optional[int] = _NOISE, profile: Optional[str] = _PROFILE):
    """Report the test accuracy of a trained chip (weights from a checkpoint), and on which die.

    The checkpoint must be for this netlist and this kind of chip (profile); another die of the
    same profile gets the trained nominal weights and parameters, quantized by that die."""

    def body():
        from rules.training.checkpoints import load_checkpoint
        from rules.training import Trainer

        nl = _load(netlist, profile, die_seed, noise_seed, None)
        trainer = Trainer(nl, checkpoint=checkpoint)
        loaded = trainer.load_chip(load_checkpoint(checkpoint))
        acc = trainer.evaluate("test")
        if as_json:
            typer.echo(json.dumps({"netlist": nl.name, "test_accuracy": acc, "checkpoint": str(checkpoint),
                                   "trained_die_seed": loaded["trained_die_seed"], "die_seed": loaded["die_seed"],
                                   "same_die": loaded["same_die"]}))
        else:
            typer.echo(f"{nl.name}: test accuracy {acc:.4f} ({len(trainer.y_test)} samples) on die "
                       f"{loaded['die_seed']}, trained on die {loaded['trained_die_seed']}")

    _guard(body)


@app.command("rules")
def rules_(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")):
    """List installed learning rules (the chipctl.rules entry points, built-in ones too) with options."""

    def body():
        from rules.manager import available_rules, check_rule, load_rule, rule_options
        from chip.errors import RuleError

        listing = []
        for name, target in sorted(available_rules().items()):
            try:
                rule_name, rule = load_rule(name)
                check_rule(rule, rule_name)
                listing.append({"name": name, "target": target, "description": getattr(rule, "description", ""),
                                "options": {k: {"default": v[0], "help": v[1]} for k, v in rule_options(rule).items()}})
            except RuleError as exc:
                listing.append({"name": name, "target": target, "error": exc.one_line()})
        if as_json:
            typer.echo(json.dumps(_jsonable(listing)))
            return
        for item in listing:
            if "error" in item:
                typer.echo(f"{item['name']}  ({item['target']})  BROKEN: {item['error']}")
                continue
            typer.echo(f"{item['name']}  ({item['target']})\n    {item['description']}")
            for opt, spec in item["options"].items():
                typer.echo(f"      {opt} = {spec['default']!r}: {spec['help']}")

    _guard(body)


def _jsonable(obj):
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def main():  # pragma: no cover - console entry for python -m
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
