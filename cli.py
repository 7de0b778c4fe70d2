"""``chipctl``: the command line front end (typer).

Every command is a thin shell over the host interface and the rule/test machinery. Bad input of
any kind (a ``ChipctlError``) becomes one line ``FILE:LINE: field: what is wrong`` on stderr and
exit code 2; ``--debug`` shows the traceback instead. ``--json`` prints one JSON object on stdout
and nothing else there (progress goes to stderr).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import typer


def _coerce_without_pydantic() -> None:
    """Newer typer (0.2x) coerces every parameter through a pydantic ``TypeAdapter`` built on
    first use; importing pydantic and building them costs every command ~0.1 s before it starts,
    a tenth of a small run. Two kinds of parameter need none of it, and are given a coercion here
    that calls typer's own code without pydantic: one left at its None default (typer returns None
    before coercing anything; the adapter is built only when a value comes), and a plain ``Path``
    given as text (typer's own path checks, on the ``Path`` pydantic would have made of the
    text). Everything else gets typer's adapter, built when its first value arrives. A typer
    without these internals (older or newer) is left as it is."""
    try:
        from dataclasses import dataclass
        from typing import Any

        from typer import _coercion, _param_types, core
    except ImportError:
        return
    build = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    check_path = getattr(_param_types, "coerce_cli_path", None)
    if build is None or base is None or check_path is None or getattr(build, "_chipctl", False):
        return

    @dataclass(frozen=True)
    class _Deferred(base):  # type: ignore[misc, valid-type]
        descriptor: Any = None

        def _coerce_value(self, value, param, ctx):
            info = self.parameter_info
            if (isinstance(value, str) and self.annotation is Path and info.path_type is None
                    and info.parser is None and self.descriptor.file_annotation is None):
                return check_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
            real = self.__dict__.get("_built")
            if real is None:
                real = self.__dict__["_built"] = build(self.descriptor)
            return real._coerce_value(value, param=param, ctx=ctx)

    def deferred(descriptor):
        if getattr(descriptor, "file_annotation", None) is not None:
            return build(descriptor)
        try:
            return _Deferred(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                             descriptor=descriptor)
        except (TypeError, AttributeError):  # a typer whose runtime parameters take other fields
            return build(descriptor)

    deferred._chipctl = True
    core.build_runtime_param = deferred


_coerce_without_pydantic()


class _App(typer.Typer):
    """The command line, with a bad command line (unknown option, a value out of range) reported
    like bad input: one line on stderr, exit 2, not a usage box."""

    def __call__(self, *args, **kwargs):
        from typer.exceptions import TyperException

        if kwargs.get("standalone_mode", True) is False:
            return super().__call__(*args, **kwargs)
        # called with the command line of the process (the console command, python -m cli): the
        # process is chipctl's own and its start-up may pause the collector; with args, another
        # program runs the app inside its process
        _state["own_process"] = not args and kwargs.get("args") is None
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except TyperException as exc:  # the command line itself is wrong (typer's click errors)
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help(), err=True)
                sys.exit(2)
            see = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(_printable(f"chipctl: {exc.format_message()}{see}".replace("\n", " ")), err=True)
            sys.exit(getattr(exc, "exit_code", 2) or 2)
        except typer.Abort:
            typer.echo("chipctl: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _printable(message: str) -> str:
    """Control characters of hostile input shown escaped, so the message stays one visible line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


app = _App(add_completion=False, no_args_is_help=True,
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
    message = _printable(message)
    typer.echo(f"chipctl: {message}" if not message.startswith(("/", ".", "<")) and ":" not in message.split(" ")[0]
               else message, err=True)
    raise typer.Exit(code)


def _guard(fn: Callable, force: bool = False, start_up: bool = False):
    """Run a command body, turning chipctl's own errors into one line and exit 2 (``force``: without
    the per-run limits of chip.budget). ``start_up``: the body imports the chip and then loads its
    netlist with ``_load``, which ends the start-up (see ``_start_up_done``); only in a process of
    chipctl's own (the console command, ``python -m cli``), not when the app is called in another
    program's process, whose objects are not ours to freeze."""
    import contextlib

    from chip.budget import unlimited
    from chip.errors import ChipctlError

    if start_up and _state.get("own_process") and gc.isenabled():
        gc.disable()
        _state["start_up"] = True
    try:
        with unlimited() if force else contextlib.nullcontext():
            return fn()
    except ChipctlError as exc:
        if _state["debug"]:
            raise
        _fail(exc.one_line())
    except MemoryError:
        if _state["debug"]:
            raise
        _fail("out of memory (the run is larger than this machine holds; see the estimate without --force)")
    except KeyboardInterrupt:
        typer.echo("chipctl: interrupted", err=True)
        raise typer.Exit(130)
    finally:
        _start_up_done()


def _start_up_done() -> None:
    """The end of a command's start-up (``_guard(start_up=True)``): the cyclic garbage collector,
    paused while the chip's modules were imported, runs again, and the objects made so far
    (numba's and numpy's modules: over a hundred thousand) are left out of its collections for good
    (``gc.freeze``). Full collections over them while numba loads were ~0.2 s of a run's CPU;
    they hold no garbage worth finding. Nothing happens when no start-up is paused."""
    if _state.pop("start_up", False):
        gc.freeze()
        gc.enable()


class _Progress:
    """Progress on stderr once work has taken longer than ``after_s``: a bar on a terminal, else
    (a log, a pipe, a batch job) a plain line every ``every_s`` seconds. CHIPCTL_PROGRESS=1 forces
    the bar, CHIPCTL_PROGRESS=0 silences both."""

    def __init__(self, label: str, after_s: float = 2.0, enabled: bool = True, every_s: float = 5.0):
        self.label = label
        self.after_s = after_s
        setting = os.environ.get("CHIPCTL_PROGRESS")
        self.enabled = (enabled and sys.stderr.isatty() and setting != "0") or setting == "1"
        self.lines = enabled and not self.enabled and setting != "0"
        self.every_s = every_s
        self.start = time.perf_counter()
        self.last_line = None
        self.bar = None
        self.task = None

    def __call__(self, fraction: float, status: str = "") -> None:
        if self.lines:
            now = time.perf_counter()
            if now - self.start >= max(self.after_s, self.every_s) and (
                    self.last_line is None or now - self.last_line >= self.every_s):
                self.last_line = now
                typer.echo(f"chipctl: {self.label}: {100 * fraction:.0f}% after {now - self.start:.0f} s"
                           + (f", {status}" if status else ""), err=True)
            return
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


class _EpochProgress(_Progress):
    """A training's progress, one epoch at a time: on a terminal a bar per epoch ("epoch 3/10")
    with the running loss and accuracy and the time the epoch still needs; otherwise a line every
    ``every_s`` seconds with the same. Fed the training's overall fraction, as the trainer reports it."""

    def __init__(self, label: str, every_s: float = 5.0):
        super().__init__(label, after_s=0.0, every_s=every_s)
        self.epochs = 1
        self.epoch = None
        self.epoch_start = time.perf_counter()

    def __call__(self, fraction: float, status: str = "") -> None:
        if not (self.lines or self.enabled):
            return
        done = fraction * self.epochs
        epoch = min(int(done - 1e-9), self.epochs - 1) if done > 0 else 0
        within = min(max(done - epoch, 0.0), 1.0)
        now = time.perf_counter()
        if epoch != self.epoch:
            self.epoch, self.epoch_start = epoch, now
            if self.bar is not None:
                self.bar.remove_task(self.task)
                self.task = None
        # "epoch e/E loss … acc …" from the trainer: the epoch goes into the bar's label
        rest = status.split(" ", 2)[2] if status.startswith("epoch ") and status.count(" ") >= 2 else status
        name = f"epoch {epoch + 1}/{self.epochs}"
        if self.lines:
            if now - self.start >= self.every_s and (self.last_line is None or now - self.last_line >= self.every_s):
                self.last_line = now
                spent = now - self.epoch_start
                eta = f", about {spent * (1 - within) / within:.0f} s left in the epoch" if within > 0 else ""
                typer.echo(f"chipctl: {self.label}: {name} {100 * within:.0f}% after {spent:.0f} s{eta}"
                           + (f", {rest}" if rest else ""), err=True)
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.fields[status]}"), console=Console(stderr=True), transient=True)
            self.bar.start()
        if self.task is None:
            self.task = self.bar.add_task(f"{self.label} {name}", total=1.0, status=rest)
        self.bar.update(self.task, completed=within, status=rest)


def _load(netlist: Path, profile, die_seed, noise_seed, batch):
    from chip.netlist import load_netlist

    try:
        return load_netlist(netlist, profile=profile, die_seed=die_seed, noise_seed=noise_seed, batch=batch)
    finally:
        _start_up_done()


_NETLIST = typer.Argument(..., help="Netlist YAML file.", exists=False)
_PROFILE = typer.Option(None, "--profile", help="Chip profile to use instead of the netlist's (bss2, ideal).")
_DIE = typer.Option(None, "--die-seed", help="Seed of the die's fixed-pattern mismatch.")
_NOISE = typer.Option(None, "--noise-seed", help="Seed of the temporal noise.")
_FORCE = typer.Option(False, "--force", help="Run even beyond the per-run memory and step limits "
                      "(CHIPCTL_MAX_MEMORY, CHIPCTL_MAX_STEPS, CHIPCTL_MAX_NEURON_STEPS).")


@app.command()
def run(netlist: Path = _NETLIST,
        out: Optional[Path] = typer.Option(None, "--out", help="Write spikes.npz, traces.npz and summary.json here."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on stdout."),
        batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Samples in the batch."),
        die_seed: Optional[int] = _DIE, noise_seed: Optional[int] = _NOISE, profile: Optional[str] = _PROFILE,
        force: bool = _FORCE,
        update_golden: bool = typer.Option(False, "--update-golden",
                                           help="Write the run's spikes as the netlist's golden file."),
        plot: bool = typer.Option(False, "--plot", help="Also draw the run (run.png) beside the data in --out.")):
    """Run a netlist on the emulated chip and summarise the spikes."""

    def body():
        from chip.host import HostInterface
        from chip.output import check_output_dir, check_output_file, summarize, write_outputs

        if plot:
            if out is None:
                _fail("--plot needs --out: the picture is drawn from the files written there")
            import pictures

            pictures.require()  # before the run, not after it
        t_start = time.perf_counter()
        nl = _load(netlist, profile, die_seed, noise_seed, batch)
        # outputs are checked before the run, not found unwritable after it
        if out is not None:
            check_output_dir(out, "--out")
        if update_golden:
            from regression.golden import golden_path

            check_output_file(golden_path(nl), "--update-golden")
        host = HostInterface(nl)
        bar = _Progress(f"running {nl.name}")
        try:
            result = host.run(progress=lambda f: bar(f))
        finally:
            bar.close()
        summary = summarize(host, result, wall_s=time.perf_counter() - t_start)
        if out is not None:
            write_outputs(out, host, result, summary)
        if plot:
            summary["plot"] = str(_draw(lambda pictures: pictures.plot_run(out)))
        if update_golden:
            from regression.runner import write_golden

            path = write_golden(nl, result)
            summary["golden"] = str(path)
        if as_json:
            typer.echo(json.dumps(summary, indent=None, sort_keys=True))
        else:
            _print_summary(summary, out)

    _guard(body, force, start_up=True)


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
    if summary.get("plot"):
        typer.echo(f"  drew {summary['plot']}")


def _draw(draw: Callable):
    """Call ``draw(pictures)`` on the non-interactive backend (matplotlib is imported only here)."""
    import pictures

    pictures.use_agg()
    return draw(pictures)


@app.command()
def plot(directory: Path = typer.Argument(..., help="A run directory (chipctl run --out) or a training "
                                                    "checkpoint directory (chipctl train)."),
         out: Optional[Path] = typer.Option(None, "--out", help="Picture file, .png, .svg or .pdf "
                                            "(default: run.png or training.png in DIRECTORY)."),
         sample: int = typer.Option(0, "--sample", min=0, help="Which sample of the batch a run's picture shows."),
         as_json: bool = typer.Option(False, "--json", help="Print the picture's path as JSON.")):
    """Draw a run (spike rasters, membrane traces as the ADC read them, rates, congested links) or a
    training (loss, accuracy, rule metrics) from the files chipctl wrote."""

    def body():
        path = _draw(lambda pictures: pictures.plot_path(directory, out, sample=sample))
        typer.echo(json.dumps({"plot": str(path)}) if as_json else f"drew {path}")

    _guard(body)


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
             as_json: bool = typer.Option(False, "--json", help="Print the mapped summary as JSON."),
             force: bool = typer.Option(False, "--force", help="Do not check the run against the per-run limits.")):
    """Check a netlist: format (its train: and expect: blocks too), references, that it fits
    the chip (it is mapped, not run), and that its calibration is for this die and these values."""

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
        if nl.calibration is not None:
            from chip.calibration import Calibration

            calibration = Calibration.load(nl.calibration)
            calibration.check_chip(nl.chip)
            calibration.check_netlist(nl)
        if not force:
            from chip.budget import check_run

            check_run(nl, mapped)
            if nl.train is not None:
                # a training or test batch: that many samples of the netlist's duration
                from rules.training.config import parse_train

                cfg = parse_train(nl)
                for key, size in (("batch_size", cfg.batch_size), ("test_batch_size", cfg.test_batch_size)):
                    check_run(nl, mapped, batch=size, batch_field=f"train.{key}")
        summary = graph_summary(mapped)
        if as_json:
            typer.echo(json.dumps({"netlist": nl.name, "ok": True, **_jsonable(summary)}))
        else:
            typer.echo(f"{netlist}: ok — {nl.chip.name} chip, {mapped.n_circuits} neurons on "
                       f"{sum(p.size for p in nl.populations.values())} circuits, "
                       f"{len(nl.projections)} projections, {len(mapped.links)} links")

    _guard(body, start_up=True)


@app.command()
def schema():
    """Print the netlist format as JSON Schema."""
    from chip.netlist import netlist_schema

    typer.echo(json.dumps(netlist_schema(), indent=2))


@app.command()
def graph(netlist: Path = _NETLIST, profile: Optional[str] = _PROFILE,
          graphml: Optional[Path] = typer.Option(None, "--graphml", help="Write the routing graph as GraphML."),
          as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
          plot: bool = typer.Option(False, "--plot", help="Draw the placement per core and half, the rows per bus "
                                    "and the routing graph's load (default file: NETLIST's name + .chip.png here)."),
          plot_out: Optional[Path] = typer.Option(None, "--out", help="Where --plot draws (.png, .svg or .pdf); "
                                                  "implies --plot.")):
    """Summarise the mapped routing graph (nodes, links, rows used) and optionally write or draw it."""

    def body():
        from chip.mapping import graph_summary, map_netlist, write_graphml
        from chip.output import check_output_file

        if graphml is not None:
            check_output_file(graphml, "--graphml")
        if plot or plot_out is not None:
            import pictures

            pictures.require()
        nl = _load(netlist, profile, None, None, None)
        mapped = map_netlist(nl)
        summary = _jsonable(graph_summary(mapped))
        if graphml is not None:
            write_graphml(mapped, graphml)
            summary["graphml"] = str(graphml)
        if plot or plot_out is not None:
            target = plot_out if plot_out is not None else Path(f"{netlist.stem}.chip.png")
            summary["plot"] = str(_draw(lambda pictures: pictures.plot_chip(mapped, target)))
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

    _guard(body, start_up=True)


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
          die_seed: Optional[int] = _DIE, noise_seed: Optional[int] = _NOISE, profile: Optional[str] = _PROFILE,
          plot: Optional[bool] = typer.Option(None, "--plot/--no-plot", help="Draw the training curves (training.png) "
                                              "into the checkpoint directory after every epoch (default: when "
                                              "matplotlib is installed)."),
          force: bool = _FORCE):
    """Train the netlist's chip in the loop with its train: block (rules, data, optimizer)."""

    def body():
        from rules.training import Trainer

        nl = _load(netlist, profile, die_seed, noise_seed, None)
        bar = _EpochProgress(f"training {nl.name}")
        trainer = Trainer(nl, extra_rules=tuple(rule), checkpoint=checkpoint, epochs=epochs, progress=bar)
        bar.epochs = trainer.config.epochs
        if trainer.checkpoint_dir is not None and not resume:
            from chip.output import check_output_dir

            check_output_dir(trainer.checkpoint_dir, "--checkpoint" if checkpoint is not None else "train.checkpoint")
        if plot:
            import pictures

            pictures.require()  # --plot without matplotlib: said before anything runs
        try:
            # one process per checkpoint folder, from reading the checkpoint to the last save
            with trainer.locked():
                if resume:
                    trainer.resume()
                # the pictures' hook (and matplotlib) only once the checkpoint is known to fit
                drawn = _training_pictures(trainer, plot, f"{nl.name} on the {nl.chip.name} chip")
                metrics = trainer.fit()
        finally:
            bar.close()
        out = {"netlist": nl.name, "profile": nl.chip.name, "epochs": metrics["epochs"],
               "train_accuracy": metrics["train_accuracy"], "test_accuracy": metrics["test_accuracy"],
               "test_acc": metrics["test_accuracy"],  # the short name scripts read
               "train_loss": metrics["train_loss"], "wall_s": metrics["wall_s"],
               "checkpoint": str(trainer.checkpoint_dir) if trainer.checkpoint_dir else None,
               "history": metrics["history"]}
        if drawn and metrics["history"]:
            out["plot"] = str(drawn)
        last = metrics["history"][-1] if metrics["history"] else {}
        if "angles_deg" in last:  # rules that learn feedback weights report layer -> angle (degrees)
            out["angles_deg"] = last["angles_deg"]
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
                           f"  ({h['epoch_wall_s']:.1f} s)"
                           + ("".join(f"  {k} {v:.1f}°" for k, v in h["angles_deg"].items()) if "angles_deg" in h else ""))
            if "dead_fraction" in metrics:
                mse = f", reconstruction MSE {metrics['reconstruction_mse']:.4f}" if "reconstruction_mse" in metrics else ""
                typer.echo(f"hidden neurons: {metrics['dead_fraction']:.1%} dead, "
                           f"{metrics['bursting_fraction']:.1%} bursting{mse}"
                           + (f"; picture {out['picture']}" if out.get("picture") else ""))
            typer.echo(f"{nl.name}: {metrics['epochs']} epochs in {metrics['wall_s']:.1f} s"
                       + (f", checkpoint in {trainer.checkpoint_dir}" if trainer.checkpoint_dir else "")
                       + (f", curves in {out['plot']}" if out.get("plot") else ""))

    _guard(body, force, start_up=True)


def _training_pictures(trainer, plot: Optional[bool], title: str) -> Optional[Path]:
    """Hook the training pictures onto the trainer's epochs; their path, or None when none are drawn
    (--no-plot, no checkpoint directory, or matplotlib missing without --plot: a notice)."""
    if plot is False:
        return None
    if trainer.checkpoint_dir is None:
        if plot:
            _fail("--plot needs a checkpoint directory (train.checkpoint or --checkpoint): the curves are drawn there")
        return None
    import pictures

    if not pictures.available():
        if plot:
            pictures.require()
        typer.echo(f"chipctl: no training curves: {pictures.MISSING}", err=True)
        return None
    from pictures.training import TRAINING_PICTURE, TrainingPictures

    pictures.use_agg()
    trainer.on_epoch = TrainingPictures(trainer, title=title)
    return trainer.checkpoint_dir / TRAINING_PICTURE


@app.command()
def calibrate(out: Path = typer.Option(..., "--out", help="Write the calibration (YAML) here."),
              profile: str = typer.Option("bss2", "--profile", help="Chip profile (bss2, ideal)."),
              die_seed: Optional[int] = typer.Option(None, "--die-seed", help="The die to calibrate (default: the profile's)."),
              noise_seed: Optional[int] = _NOISE,
              targets: Optional[Path] = typer.Option(None, "--targets", help="Targets file (YAML); default: leak 0, "
                                                     "reset 0, threshold 1, tau_mem 12 us, tau_syn 6 us."),
              rule: list[str] = typer.Option([], "--rule", help="Calibration rule by name or module:Class, asked "
                                             "before the built-in one (repeatable)."),
              batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Samples per measurement run."),
              anchor: Optional[str] = typer.Option(None, "--anchor", help="Potentials to the die's median at the "
                                                   "targets' nominal codes (median, the default) or to the targets as "
                                                   "the CADC reads them (cadc)."),
              no_report: bool = typer.Option(False, "--no-report", help="Skip measuring the spreads before and after."),
              as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object on stdout.")):
    """Calibrate a die: per-circuit codes of leak, reset, threshold, tau_mem and tau_syn, measured
    through the host interface; report the spread of each parameter before and after."""

    def body():
        from chip.errors import CalibrationError
        from chip.profiles import PROFILES
        from chip.output import check_output_file
        from rules.calibration import calibrate_die, read_targets, spread_table

        check_output_file(out, "--out")  # before the minutes of measuring, not after them
        if profile not in PROFILES:
            raise CalibrationError(f"unknown chip profile {profile!r}; known: {', '.join(sorted(PROFILES))}")
        if PROFILES[profile].mismatch.off:
            raise CalibrationError(f"the {profile} chip has no mismatch: there is nothing to calibrate")
        wanted = read_targets(targets) if targets is not None else None
        options = {"calibration": {k: v for k, v in (("batch", batch), ("report", not no_report), ("anchor", anchor))
                                   if v is not None}}
        bar = _Progress(f"calibrating {profile} die", after_s=0.0)
        try:
            cal = calibrate_die(profile, die_seed=die_seed, noise_seed=noise_seed, targets=wanted,
                                rules=tuple(dict.fromkeys(tuple(rule) + ("calibration",))), options=options,
                                progress=lambda f, status="": bar(f, status))
        finally:
            bar.close()
        cal.dump(out)
        report = cal.report
        summary = {"profile": cal.profile["name"], "die_seed": cal.die["seed"], "circuits": cal.circuits,
                   "out": str(out), "rule": cal.made_by.get("rule"), "wall_s": cal.made_by.get("wall_s"),
                   "runs": report.get("runs"), "targets": cal.targets,
                   "parameters": {row["parameter"]: row for row in spread_table(cal)},
                   "unreached": cal.unreached}
        if as_json:
            typer.echo(json.dumps(_jsonable(summary)))
            return
        _print_calibration(summary)

    _guard(body)


def _print_calibration(summary: dict) -> None:
    from chip.profiles import PROFILES

    p = PROFILES[summary["profile"]]
    mv = (p.v_model_one_v - p.v_model_zero_v) * 1e3  # mV per model unit
    typer.echo(f"calibrated {summary['profile']} die {summary['die_seed']}: {summary['circuits']} circuits in "
               f"{summary['wall_s']:.1f} s ({summary['runs']} runs), wrote {summary['out']}")
    typer.echo(f"  {'parameter':<15} {'target':>8} {'level':>8}  {'before: mean':>12} {'spread':>16}  "
               f"{'after: mean':>11} {'spread':>16}  {'after/before':>12}  not reached")

    def spread(name, value):
        if value is None:
            return "-"
        return f"{value:.4f} ({value * mv:.1f} mV)" if not name.endswith("_us") else f"{value:.3f} us"

    def num(value, digits=4):
        return "-" if value is None else f"{value:.{digits}f}"

    for name, row in summary["parameters"].items():
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        level = "-" if row.get("level") is None or row["level"] != row["level"] else f"{row['level']:.4f}"  # NaN: unreadable
        typer.echo(f"  {name:<15} {row['target']:>8g} {level:>8}  {num(row['before_mean']):>12} "
                   f"{spread(name, row['before_spread']):>16}"
                   f"  {num(row['after_mean']):>11} {spread(name, row['after_spread']):>16}  {ratio:>12}  "
                   f"{row['unreached']}")
    for name, entries in summary["unreached"].items():
        for entry in entries[:5]:
            reached = "not measurable" if entry.get("reached") is None else f"reached {entry['reached']:.4g}"
            why = f" ({entry['why']})" if entry.get("why") else ""
            typer.echo(f"    {name} circuit {entry['circuit']}: target {entry['target']:g}, {reached}, code "
                       f"{entry['code']:g}{why}")
        if len(entries) > 5:
            typer.echo(f"    {name}: {len(entries) - 5} more circuits not reached (all in the file and --json)")
    typer.echo("  spread: standard deviation after cutting 5 % of the circuits from each tail; potentials in "
               "model units as the CADC reads them; level: what every circuit of a potential was brought to")


def _reconstruction_picture(trainer, nl, picture: Optional[Path]) -> Optional[str]:
    """Write originals beside reconstructions (needs matplotlib; without it, one notice line)."""
    from rules.training.picture import write_reconstructions

    if picture is None:
        picture = (trainer.checkpoint_dir / "reconstructions.png" if trainer.checkpoint_dir
                   else Path(f"{nl.name}_reconstructions.png"))
    originals, recons = trainer.reconstructions(10)
    pixels = int(len(originals[0])) if len(originals) else 0
    side = int(round(pixels ** 0.5))
    written = write_reconstructions(picture, originals, recons, shape=(side, side) if side * side == pixels else (1, pixels),
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

    _guard(body, start_up=True)


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


# NIR in and out: their own module (the nir package is an optional extra)
from cli_nir import register as _register_nir  # noqa: E402

_register_nir(app, _guard, _load)

# sweeps over dies, seeds and parameters: their own module
from cli_sweep import register as _register_sweep  # noqa: E402

_register_sweep(app, _guard, lambda label: _Progress(label, after_s=0.0))


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
