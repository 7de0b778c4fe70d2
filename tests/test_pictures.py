"""Pictures: every kind drawn and checked for what it shows, through the CLI a user types.

A picture passes when its file is written and not blank, and its figure has the expected panels
with labelled axes showing the data the run, training or mapping produced (the same spike times,
trace samples, link counts, rows and loads) — not merely when drawing raised nothing. Also: a
missing matplotlib is one line and exit 2, a plain ``chipctl run`` never imports matplotlib, the
README's picture is what its documented command draws, and a 4000-neuron raster is drawn as an
image (its speed is a benchmark).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from rules import Rule, hookimpl

pytest.importorskip("matplotlib")

import matplotlib.colors  # noqa: E402
import matplotlib.image  # noqa: E402

import pictures  # noqa: E402
from pictures.run import load_run, run_figure  # noqa: E402
from pictures.training import load_training, training_figure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SINGLE = REPO / "netlists" / "single_neuron.yaml"
OVERLOAD = REPO / "netlists" / "overload.yaml"


def _cli(*args, ok: bool = True):
    # no progress lines: on a busy machine a training passes their 5 s mark and they would land
    # in the output before the JSON
    result = CliRunner().invoke(app, [str(a) for a in args], env={"CHIPCTL_PROGRESS": "0"})
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _not_blank(path: Path, min_ink: float = 0.01) -> np.ndarray:
    """The image's pixels, after checking that a real share of them is not background."""
    assert path.is_file() and path.stat().st_size > 1000, path
    img = matplotlib.image.imread(path)[..., :3]
    ink = np.mean(np.any(np.abs(img - img[0, 0]) > 0.1, axis=-1))
    assert ink > min_ink, f"{path}: only {ink:.2%} of the pixels are drawn"
    return img


def _labelled(ax) -> None:
    assert ax.get_xlabel() or ax.get_ylabel(), ax.get_title("left")
    assert ax.get_ylabel(), f"panel {ax.get_title('left')!r} has no y label"


def _inside(fig) -> None:
    """Every panel, with its title, labels and tick labels, is inside the figure: nothing cut off."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    for ax in fig.axes:
        box = ax.get_tightbbox(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, \
            f"panel {ax.get_title('left')!r} is cut off: {box} outside {width:.0f} x {height:.0f}"


def _bar_widths(ax) -> dict[str, float]:
    """Horizontal bars by their y tick label (summed over stacked bars)."""
    ticks = dict(zip(np.round(ax.get_yticks(), 6), [t.get_text() for t in ax.get_yticklabels()]))
    widths: dict[str, float] = {}
    for p in ax.patches:
        label = ticks[round(p.get_y() + p.get_height() / 2, 6)]
        widths[label] = widths.get(label, 0.0) + p.get_width()
    return widths


# ------------------------------------------------------------------------------------ runs
def test_run_plot_draws_raster_trace_and_rates_of_the_single_neuron(tmp_path):
    out = tmp_path / "single"
    result = _cli("run", SINGLE, "--out", out, "--plot")
    assert f"drew {out / 'run.png'}" in result.output
    _not_blank(out / "run.png")

    run = load_run(out)
    fig = run_figure(run)
    raster, trace, rates = fig.axes  # one population, one trace, the rates: nothing else
    for ax in fig.axes:
        _labelled(ax)
    _inside(fig)
    assert rates.get_xlabel() == "time (µs, hardware)"
    assert "neuron" in raster.get_ylabel() and "Hz" in rates.get_ylabel()
    # the raster shows exactly the run's spikes
    [dots] = raster.get_lines()
    np.testing.assert_allclose(dots.get_xdata(), run.spikes["neuron"]["time_us"])
    # the trace as the ADC read it: sample and hold steps through every sample, codes on the right
    steps = [line for line in trace.get_lines() if line.get_drawstyle() == "steps-post"]
    assert len(steps) == 1
    tr = run.traces[0]
    np.testing.assert_allclose(steps[0].get_xdata(), tr["time_us"])
    np.testing.assert_allclose(steps[0].get_ydata(), tr["values"][0, :, 0])
    assert "model units" in trace.get_ylabel() and "CADC" in trace.get_title("left")
    [codes] = [child for child in trace.get_children() if type(child).__name__ == "SecondaryAxis"]
    assert codes.get_ylabel() == "CADC code"
    # the code axis is the ADC's: model values map to the codes it read
    fig.canvas.draw()
    slope, offset = np.polyfit(tr["codes"][0, :, 0].astype(float), tr["values"][0, :, 0], 1)
    np.testing.assert_allclose((np.asarray(trace.get_ylim()) - offset) / slope, codes.get_ylim(), rtol=1e-6)
    # the rate: one spike of one neuron in one bin
    [stairs] = rates.patches
    width_s = 60e-6 / 50
    assert stairs.get_data().values.max() * 1e3 == pytest.approx(1 / width_s)


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF")])
def test_plot_writes_svg_and_pdf(tmp_path, suffix, magic):
    out = tmp_path / "single"
    _cli("run", SINGLE, "--out", out)
    target = tmp_path / f"picture{suffix}"
    result = _cli("plot", out, "--out", target, "--json")
    assert json.loads(result.output) == {"plot": str(target)}
    data = target.read_bytes()
    assert magic in data[:400] and len(data) > 5000
    if suffix == ".svg":
        text = data.decode()
        assert "time (µs, hardware)" in text and "CADC code" in text


def test_congested_links_get_their_panel(tmp_path):
    out = tmp_path / "overload"
    _cli("run", OVERLOAD, "--out", out, "--plot")
    _not_blank(out / "run.png")
    run = load_run(out)
    fig = run_figure(run)
    raster, rates, links = fig.axes
    for ax in fig.axes:
        _labelled(ax)
    _inside(fig)
    assert links.get_xlabel() == "events (whole batch)" and "congested" in links.get_title("left")
    congested = [link for link in run.summary["links"] if link["dropped"]]
    assert [t.get_text() for t in links.get_yticklabels()] == [link["name"] for link in congested]
    delivered, dropped = links.patches[:len(congested)], links.patches[len(congested):]
    for link, d, x in zip(congested, delivered, dropped):
        assert d.get_width() == link["delivered"] and x.get_width() == link["dropped"]
        assert d.get_facecolor() != x.get_facecolor()
    assert _bar_widths(links) == {link["name"]: link["offered"] for link in congested}


BIOLOGICAL = """\
name: two_populations
timescale: biological
duration: 200 ms
batch: 3
chip: {profile: ideal, step: 0.1 ms}
populations:
  exc: {size: 40, params: {tau_mem: 20 ms, tau_syn: 5 ms, tau_ref: 2 ms}}
  inh: {size: 10, params: {tau_mem: 20 ms, tau_syn: 5 ms, tau_ref: 2 ms}}
inputs:
  drive: {size: 20, type: poisson, rate: 60 Hz, seed: 4}
projections:
  d_exc: {pre: drive, post: exc, connectivity: {probability: 0.5, seed: 1}, weights: 0.4}
  d_inh: {pre: drive, post: inh, connectivity: {probability: 0.5, seed: 2}, weights: 0.4}
record:
  spikes: all
  membrane: [{population: exc, neurons: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], adc: cadc}]
"""


def test_biological_time_two_populations_and_the_sample_shown(tmp_path):
    net = tmp_path / "bio.yaml"
    net.write_text(BIOLOGICAL)
    out = tmp_path / "bio"
    _cli("run", net, "--out", out)
    _cli("plot", out, "--sample", 2, "--out", tmp_path / "s2.png")
    _not_blank(tmp_path / "s2.png")
    run = load_run(out)
    fig = run_figure(run, sample=2)
    exc, inh, trace, rates = fig.axes
    _inside(fig)
    assert rates.get_xlabel() == "time (ms, biological)" and "biological" in rates.get_ylabel()
    assert rates.get_xlim() == pytest.approx((0, 200))
    # one colour per population, the same in the raster and the rates
    hexed = matplotlib.colors.to_hex
    legend = {t.get_text(): hexed(h.get_color()) for t, h in zip(rates.get_legend().get_texts(),
                                                                    rates.get_legend().legend_handles)}
    assert hexed(exc.get_lines()[0].get_color()) == legend["exc"] != legend["inh"] == hexed(inh.get_lines()[0].get_color())
    # sample 2's spikes, in ms: hardware µs equal biological ms at a speedup of 1000
    spikes = run.spikes["inh"]
    keep = spikes["batch"] == 2
    np.testing.assert_allclose(inh.get_lines()[0].get_xdata(), spikes["time_us"][keep])
    assert keep.sum() and (~keep).sum()
    # ten traced neurons: the first eight drawn, and the title says so
    assert "first 8 of 10" in trace.get_title("left")
    assert len([line for line in trace.get_lines() if line.get_drawstyle() == "steps-post"]) == 8
    assert "sample 2 of 3" in fig.get_suptitle()

    bad = _cli("plot", out, "--sample", 3, ok=False)
    assert bad.exit_code == 2 and "sample 3 is not in the batch (0..2)" in bad.output


def test_a_4000_neuron_raster_is_one_image_not_thousands_of_markers(tmp_path):
    # how long it takes is measured in benchmarks/bench_pictures.py, not asserted here
    out = tmp_path / "cuba"
    _cli("run", REPO / "benchmarks" / "cuba_ideal.yaml", "--out", out)
    _cli("plot", out, "--out", tmp_path / "cuba.svg")
    svg = (tmp_path / "cuba.svg").read_text()
    # the dots are one embedded raster image per population, not 20000 vector markers
    assert svg.count("<image") >= 2 and len(svg) < 5_000_000
    fig = run_figure(load_run(out))
    assert all(ax.get_lines()[0].get_rasterized() for ax in fig.axes[:2])
    _inside(fig)
    assert fig.axes[-1].get_xlabel() == "time (ms, biological)"


def test_bad_directories_and_formats_are_one_line(tmp_path):
    for args, message in [
        (("plot", tmp_path / "nowhere"), "no such directory"),
        (("plot", tmp_path), "neither a run (summary.json"),
        (("plot", SINGLE), "a file; chipctl plot draws a run directory or a checkpoint directory"),
        (("run", SINGLE, "--plot"), "--plot needs --out"),
    ]:
        result = _cli(*args, ok=False)
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    out = tmp_path / "single"
    _cli("run", SINGLE, "--out", out)
    result = _cli("plot", out, "--out", tmp_path / "x.gif", ok=False)
    assert result.exit_code == 2 and "not .gif" in result.output
    (out / "spikes.npz").write_bytes(b"not a zip file")
    result = _cli("plot", out, ok=False)
    assert result.exit_code == 2 and "spikes.npz: unreadable" in result.output


# ------------------------------------------------------------------------------------ training
TRAIN = """\
name: yinyang_tiny
duration: 30 us
chip: {profile: ideal, step: 0.2 us}
populations:
  out: {size: 3, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 4}}
inputs:
  in: {size: 5, type: spikes, times: [[], [], [], [], []]}
projections:
  in_out: {pre: in, post: out, weights: {uniform: {low: 0.5, high: 1.5}, seed: 3}}
train:
  task: yinyang
  input: in
  output: out
  rules: [eventprop]
  encoding: {duplicate: 1}
  epochs: 3
  eval_every: 2
  batch_size: 32
  train_size: 64
  test_size: 32
  seed: 0
"""


class FigureRule(Rule):
    """Reports a scalar and a list metric per epoch and contributes figures, as data and drawn."""

    name = "figures"
    description = "Test rule: metrics and figures."
    seen: list[int] = []

    @hookimpl
    def chipctl_epoch_finished(self, context, epoch, metrics):
        # names the pictures have never heard of: a scalar, a list, a dict of scalars (per layer, say)
        return {"angle_deg": 40.0 - 5 * epoch, "tau_mem_us": [10.0 + i + epoch for i in range(3)],
                "fraction": {"dead": 0.1 * epoch, "bursting": 0.05}}

    @hookimpl
    def chipctl_figures(self, context, history):
        FigureRule.seen.append(len(history))
        from matplotlib.figure import Figure

        own = Figure()
        own.add_subplot().plot([0, 1], [1, 0])
        return {"weights": {"kind": "lines", "y": {"mean": [h["angle_deg"] / 10 for h in history]},
                            "ylabel": "mean weight (model units)"},
                "taus": {"kind": "hist", "values": {"learned": history[-1]["tau_mem_us"]}, "xlabel": "tau_mem (µs)"},
                "own": own}


def test_train_draws_curves_as_it_goes_and_plot_redraws_them(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(TRAIN)
    ck = tmp_path / "ck"
    FigureRule.seen.clear()
    result = _cli("train", net, "--checkpoint", ck, "--rule", f"{__name__}:FigureRule", "--json")
    out = json.loads(result.output)
    assert out["plot"] == str(ck / "training.png")
    assert FigureRule.seen == [1, 2, 3]  # after every epoch, with the history so far
    _not_blank(ck / "training.png")
    _not_blank(ck / "training.figures.own.png", min_ink=0.001)
    stored = json.loads((ck / "training_figures.json").read_text())
    assert set(stored["figures"]) == {"weights", "taus"}

    _cli("plot", ck, "--out", tmp_path / "again.png")
    _not_blank(tmp_path / "again.png")
    history, panels, title = load_training(ck)
    assert title == "yinyang_tiny on the ideal chip" and len(history) == 3
    fig = training_figure(history, panels, title)
    # loss, accuracy, every scalar metric (the dict's entries on one panel), the list metric's
    # histogram, the rule's two panels
    assert [ax.get_title("left") for ax in fig.axes] == ["loss", "accuracy", "angle_deg", "fraction", "tau_mem_us",
                                                         "figures: weights", "figures: taus"]
    loss, acc, angle, fraction, taus, weights, hist = fig.axes
    for ax in fig.axes:
        _labelled(ax)
    _inside(fig)
    assert loss.get_xlabel() == "epoch" and acc.get_ylabel() == "accuracy (%)"
    np.testing.assert_allclose(loss.get_lines()[0].get_ydata(), [h["train_loss"] for h in history])
    train_line, test_line = acc.get_lines()
    np.testing.assert_allclose(train_line.get_ydata(), [100 * h["train_accuracy"] for h in history])
    np.testing.assert_array_equal(test_line.get_xdata(), [2, 3])  # evaluated every 2nd epoch and the last
    assert angle.get_ylabel() == "angle (°)"
    np.testing.assert_allclose(angle.get_lines()[0].get_ydata(), [40, 35, 30])
    dead, bursting = fraction.get_lines()
    assert fraction.get_ylabel() == "fraction" and (dead.get_label(), bursting.get_label()) == ("dead", "bursting")
    assert [t.get_text() for t in fraction.get_legend().get_texts()] == ["dead", "bursting"]
    np.testing.assert_allclose(dead.get_ydata(), [0, 0.1, 0.2])
    np.testing.assert_allclose(bursting.get_ydata(), [0.05] * 3)
    # the last epoch's list filled, the first outlined
    assert sum(p.get_height() for p in taus.patches if p.get_fill()) == 3
    assert taus.get_xlabel() == "tau mem (µs)" and taus.get_ylabel() == "count"
    assert weights.get_ylabel() == "mean weight (model units)" and weights.get_xlabel() == "epoch"
    assert hist.get_xlabel() == "tau_mem (µs)"
    assert "3 epochs" in fig.get_suptitle()


def test_training_pictures_can_be_switched_off_and_need_a_directory(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(TRAIN.replace("epochs: 3", "epochs: 1"))
    _cli("train", net, "--checkpoint", tmp_path / "ck", "--no-plot")
    assert (tmp_path / "ck" / "checkpoint.npz").exists() and not (tmp_path / "ck" / "training.png").exists()
    # the curves come from the checkpoint's history, so they can still be drawn afterwards
    assert f"drew {tmp_path / 'ck' / 'training.png'}" in _cli("plot", tmp_path / "ck").output
    _not_blank(tmp_path / "ck" / "training.png")
    bad = _cli("plot", tmp_path / "ck", "--sample", 1, ok=False)
    assert bad.exit_code == 2 and "--sample picks a sample of a run" in bad.output
    result = _cli("train", net, "--plot", ok=False)
    assert result.exit_code == 2 and "--plot needs a checkpoint directory" in result.output


def test_a_bad_rule_figure_names_the_rule(tmp_path):
    with pytest.raises(pictures.PlotError, match="rule 'r': figure 'f': a panel is a dict"):
        pictures.training.write_training_pictures(tmp_path, [{"epoch": 1, "train_loss": 1.0}], {"r": {"f": [1, 2]}})
    with pytest.raises(pictures.PlotError, match="one value per x"):
        pictures.training.write_training_pictures(
            tmp_path, [{"epoch": 1, "train_loss": 1.0}], {"r": {"f": {"kind": "lines", "x": [1, 2], "y": {"a": [1]}}}})


def test_the_documented_figures_hook_draws(tmp_path):
    """docs/writing-a-rule.md's chipctl_figures example, called as the trainer calls it."""
    from types import SimpleNamespace

    text = (REPO / "docs" / "writing-a-rule.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M) if "chipctl_figures" in b]
    namespace: dict = {}
    exec(compile(block, "writing-a-rule.md", "exec"), namespace)
    host = SimpleNamespace(read_params=lambda population, name: np.array([9.5, 10.0, 12.5]))
    context = SimpleNamespace(host=host, output="out")
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.3 * e, "epoch_wall_s": 2.0 + e,
                "angle_deg": {"hidden": 80.0 - 10 * e, "out": 60.0 - 10 * e}} for e in (1, 2)]
    figures = {"training_watch": namespace["TrainingWatch"]().chipctl_figures(context, history)}
    pictures.training.write_training_pictures(tmp_path, history, figures)
    _not_blank(tmp_path / "training.png")
    stored = json.loads((tmp_path / "training_figures.json").read_text())
    assert stored["training_watch"]["taus"]["values"] == {"learned": [9.5, 10.0, 12.5]}
    fig = training_figure(history, stored)
    titles = [ax.get_title("left") for ax in fig.axes]
    assert titles == ["loss", "accuracy", "angle_deg", "training_watch: loss_vs_time", "training_watch: taus"]
    reported, by_time, taus = fig.axes[2:]
    # the per-layer angles as reported, one panel, a line per layer
    assert [line.get_label() for line in reported.get_lines()] == ["hidden", "out"]
    np.testing.assert_allclose(reported.get_lines()[0].get_ydata(), [70, 60])
    assert reported.get_ylabel() == "angle (°)"
    # the rule's panels: its own x axis, and the values it read from the chip
    [line] = by_time.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [3, 7])
    np.testing.assert_allclose(line.get_ydata(), [1, 0.5])
    assert by_time.get_xlabel() == "wall-clock time (s)" and by_time.get_ylabel() == "training loss"
    assert taus.get_xlabel() == "tau_mem (µs)" and len(taus.patches) == 1  # one filled step outline
    _inside(fig)


# ------------------------------------------------------------------------------------ the chip
TWO_HALVES = """\
name: two_halves
duration: 10 us
chip: {profile: bss2}
populations:
  hidden: {size: 300}
  out: {size: 4}
inputs:
  in: {size: 20, type: poisson, rate: 10 kHz, seed: 1}
projections:
  in_hidden: {pre: in, post: hidden, connectivity: {probability: 0.5, seed: 1}, weights: {normal: {mean: 0, std: 0.2}, seed: 2}}
  hidden_out: {pre: hidden, post: out, connectivity: {probability: 0.1, seed: 3}, weights: 0.3}
"""


def test_graph_plot_draws_halves_rows_per_bus_and_link_load(tmp_path, monkeypatch):
    from chip.mapping import graph_summary, map_netlist
    from chip.netlist import load_netlist

    net = tmp_path / "two_halves.yaml"
    net.write_text(TWO_HALVES)
    monkeypatch.chdir(tmp_path)
    result = _cli("graph", net, "--plot", "--json")
    assert json.loads(result.output)["plot"] == "two_halves.chip.png"
    _not_blank(tmp_path / "two_halves.chip.png")

    mapped = map_netlist(load_netlist(net))
    fig = pictures.chip_figure(mapped)
    half0, half1, buses, links = fig.axes  # 300 neurons: two halves, then rows per bus and link load
    for ax in fig.axes:
        _labelled(ax)
    _inside(fig)
    assert half0.get_title("left").startswith("core0.half0: 256 circuits") and half1.get_title("left").startswith("core0.half1: 48")
    assert [t.get_text() for t in half0.get_yticklabels()] == ["bus 0", "bus 1", "bus 2", "bus 3", "neurons"]
    # every synapse of the mapping is one coloured cell of its half's array
    cells = {0: 0, 1: 0}
    for proj in mapped.projections.values():
        for ids in (proj.exc_synapse, proj.inh_synapse):
            half, _, _ = mapped.decode_synapses(np.asarray(ids)[np.asarray(ids) >= 0])
            for h in (0, 1):
                cells[h] += int(np.sum(half == h))
    for ax, h in ((half0, 0), (half1, 1)):
        synapses, band = ax.get_images()
        assert np.count_nonzero(synapses.get_array()) == cells[h] and synapses.get_array().shape == (256, 256)
        assert np.count_nonzero(band.get_array()) == (256 if h == 0 else 48)
    # rows per bus: the summary's numbers, bar by bar
    summary = graph_summary(mapped)
    rows = [(b["excitatory"], b["inhibitory"]) for half in summary["rows_used"].values() for b in half["buses"]]
    bars = buses.patches
    assert [int(p.get_height()) for p in bars[:len(rows)]] == [e for e, _ in rows]
    assert [int(p.get_height()) for p in bars[len(rows):2 * len(rows)]] == [i for _, i in rows]
    assert buses.get_ylabel() == "synapse rows"
    # link load: the input's 20 neurons enter through the FPGA link, the hidden neurons of each half
    # leave through their half's output
    widths = _bar_widths(links)
    assert widths["input:in->fpga"] == 20 and widths["fpga->core0.xbar"] == 20
    assert widths["neurons:core0.half0->core0.xbar"] == 256 and widths["neurons:core0.half1->core0.xbar"] == 300 - 256
    assert links.get_xlabel() == "source neurons sending over the link"

    result = _cli("graph", net, "--out", tmp_path / "chip.svg")
    assert (tmp_path / "chip.svg").read_bytes()[:400].find(b"<svg") >= 0


def test_graph_plot_of_an_ideal_chip_with_many_halves():
    from chip.mapping import map_netlist
    from chip.netlist import load_netlist

    fig = pictures.chip_figure(map_netlist(load_netlist(REPO / "benchmarks" / "cuba_ideal.yaml")))
    assert len(fig.axes) == 16 + 2  # 4000 neurons on 16 halves of 256
    synapses, _ = fig.axes[0].get_images()
    assert synapses.get_array().shape[0] < 65536  # the rows in use, not the ideal chip's 65536
    # a 4 x 4 grid: the outer panels carry the axis labels, every panel its half's name
    halves, (buses, links) = fig.axes[:16], fig.axes[16:]
    assert [bool(ax.get_ylabel()) for ax in halves] == [i % 4 == 0 for i in range(16)]
    assert [bool(ax.get_xlabel()) for ax in halves] == [i >= 12 for i in range(16)]
    assert [ax.get_title("left").split(":")[0] for ax in halves[:2]] == ["core0.half0", "core0.half1"]
    _labelled(buses)
    _labelled(links)
    _inside(fig)


def test_chip_view_of_many_halves_labels_halves_not_buses():
    from chip.mapping import map_netlist
    from chip.netlist import load_netlist

    fig = pictures.chip_figure(map_netlist(load_netlist(REPO / "netlists" / "cuba.yaml")))
    buses = fig.axes[-2]
    names = [t.get_text() for t in buses.get_xticklabels()]
    assert len(names) == 16 and names[0] == "core0.half0" and names[-1] == "core7.half1"
    assert len(buses.patches) == 2 * 16 * 4  # excitatory and inhibitory rows of 4 buses per half
    assert "buses left to right" in buses.get_xlabel()
    _inside(fig)


# ------------------------------------------------------------------------------------ installs
def _python(code: str, *args, timeout=300):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


NO_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None; sys.argv = ['chipctl'] + sys.argv[1:]; from cli import app; app()"


def test_without_matplotlib_pictures_are_one_line_and_exit_2(tmp_path):
    out = tmp_path / "single"
    _cli("run", SINGLE, "--out", out)
    for args in (("plot", out), ("run", SINGLE, "--out", tmp_path / "fresh", "--plot"), ("graph", SINGLE, "--plot")):
        proc = _python(NO_MATPLOTLIB, *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"chipctl: {pictures.MISSING}"
    assert not (tmp_path / "fresh").exists()  # refused before the run
    net = tmp_path / "net.yaml"
    net.write_text(TRAIN.replace("epochs: 3", "epochs: 1"))
    proc = _python(NO_MATPLOTLIB, "train", net, "--checkpoint", tmp_path / "ck")
    assert proc.returncode == 0, proc.stderr
    assert f"no training curves: {pictures.MISSING}" in proc.stderr and (tmp_path / "ck" / "checkpoint.npz").exists()


def test_a_plain_run_imports_no_matplotlib(tmp_path):
    code = ("import sys, chip, chipctl, pictures; from typer.testing import CliRunner; from cli import app; "
            "r = CliRunner().invoke(app, ['run', 'netlists/single_neuron.yaml', '--out', sys.argv[1]]); "
            "assert r.exit_code == 0, r.output; print('matplotlib' in sys.modules)")
    proc = _python(code, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ------------------------------------------------------------------------------------ README
def test_readme_picture_is_what_its_documented_command_draws(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    [image] = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    command = re.search(r"^(chipctl run netlists/single_neuron\.yaml --out (\S+)) && "
                        r"(chipctl plot \2 --out " + re.escape(image) + r")$", readme, flags=re.M)
    assert command, f"README.md must show the command that draws {image}"
    out = tmp_path / "run"
    run, netlist, flag = command.group(1).split()[1:-1]
    _cli(run, REPO / netlist, flag, out)
    _cli("plot", out, "--out", tmp_path / "fresh.png")
    committed = _not_blank(REPO / image)
    fresh = _not_blank(tmp_path / "fresh.png")
    assert committed.shape == fresh.shape, f"{image} is stale: redraw it with the README's command"
    # another noise seed moves the trace over ~1 % of the pixels (and only 0.5 % of mean intensity,
    # which is why the share of changed pixels is what is compared)
    changed = np.mean(np.any(np.abs(committed - fresh) > 0.2, axis=-1))
    assert changed < 0.002, f"{image} is stale ({changed:.2%} of its pixels differ): redraw it with the README's command"


def test_readme_picture_commands_run_as_written(tmp_path, monkeypatch):
    """The README's --plot lines, on the README's own my.yaml, in a fresh directory."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A netlist"):readme.index("## From Python")]
    [netlist] = re.findall(r"^```yaml\n(.*?)^```$", section, flags=re.S | re.M)
    lines = [line.split("#")[0].split() for line in section.splitlines() if "--plot" in line]
    assert [words[:2] for words in lines] == [["chipctl", "graph"], ["chipctl", "run"]]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my.yaml").write_text(netlist)
    for words in lines:
        _cli(*words[1:])
    _not_blank(tmp_path / "my.chip.png")
    _not_blank(tmp_path / "runs" / "my" / "run.png")

