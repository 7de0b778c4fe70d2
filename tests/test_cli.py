"""The command line as a user meets it: summaries, JSON, output files, one-line errors with exit 2."""

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

HERE = Path(__file__).parent
ROOT = HERE.parent
MALFORMED = sorted((HERE / "malformed").glob("*.yaml")) + sorted((HERE / "malformed_mapping").glob("*.yaml"))


def _expectations(path: Path) -> tuple[str, int]:
    lines = path.read_text().splitlines()
    expect = re.match(r"# expect: (.*)", lines[0]).group(1).strip()
    line = int(re.match(r"# line-of-error: (\d+)", lines[1]).group(1))
    return expect, line


def test_at_least_fifteen_malformed_netlists():
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_netlist_gives_one_line_and_exit_2(path):
    expect, line = _expectations(path)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message, message
    assert "Traceback" not in message
    assert message.startswith(f"{path}:{line}:"), message
    assert expect in message, message


# A netlist whose train: and expect: blocks are valid; each case below puts one typo into a copy.
WITH_BLOCKS = """\
duration: 30 us
chip: {profile: ideal}
populations:
  out: {size: 3}
inputs:
  in: {size: 5, type: spikes, times: [[1 us], [], [], [], []]}
projections:
  in_out: {pre: in, post: out, weights: 0.5}
train:
  input: in
  output: out
  epochs: 3
  optimizer: {name: adam, lr: 0.01}
  encoding: {t_early: 2 us, duplicate: 1}
expect:
  spikes:
    out: {count: ">= 0"}
  runs:
    - profile: ideal
      events: {dropped: 0}
"""


def test_validate_accepts_train_and_expect_blocks(tmp_path):
    path = tmp_path / "blocks.yaml"
    path.write_text(WITH_BLOCKS)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


@pytest.mark.parametrize("typo, fixed, line, message", [
    ("  epochs: 3", "  epoch: 3", 12, "train.epoch: unknown field 'epoch' (did you mean 'epochs'?)"),
    ("{name: adam, lr: 0.01}", "{name: adam, lr: 0.01, betas: [0.9]}", 13,
     "train.optimizer.betas: expected [beta1, beta2]"),
    ("{t_early: 2 us,", "{t_erly: 2 us,", 14, "train.encoding.t_erly: unknown field 't_erly' (did you mean 't_early'?)"),
    ("  output: out", "  output: ot", 11, "train.output: unknown population 'ot' (did you mean 'out'?)"),
    ('{count: ">= 0"}', '{cuont: ">= 0"}', 17, "expect.spikes.out.cuont: unknown field 'cuont' (did you mean 'count'?)"),
    ("      events: {dropped: 0}", "      event: {dropped: 0}", 20,
     "expect.runs.0.event: unknown field 'event' (did you mean 'events'?)"),
])
def test_validate_finds_a_typo_in_train_and_expect_blocks(tmp_path, typo, fixed, line, message):
    assert typo in WITH_BLOCKS
    path = tmp_path / "blocks.yaml"
    path.write_text(WITH_BLOCKS.replace(typo, fixed))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    output = result.output.strip()
    assert "\n" not in output and "Traceback" not in output
    assert output.startswith(f"{path}:{line}: {message}"), output


def test_run_on_malformed_netlist_also_exits_2_without_traceback():
    bad = HERE / "malformed" / "bad_unit.yaml"
    proc = subprocess.run([sys.executable, "-c", "import cli; cli.app()", "run", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output and "Traceback" not in result.output


def test_run_json_summary_and_outputs(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(ROOT / "netlists/single_neuron.yaml"), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("dropped_events", "emulated_us", "wall_s"):
        assert key in summary
    pop = summary["populations"]["neuron"]
    assert pop["spikes"] >= 1 and pop["rate_hz"] > 0
    spikes = np.load(out / "spikes.npz")
    assert len(spikes["neuron/time_us"]) == pop["spikes"]
    traces = np.load(out / "traces.npz")
    assert any(k.endswith("/codes") for k in traces.files)  # bss2: 8-bit ADC codes
    assert json.loads((out / "summary.json").read_text())["populations"] == summary["populations"]


def test_seed_options_change_noise_but_not_die(tmp_path):
    # cuba: its spike counts move with the noise (in yinyang_bss2 every neuron fires exactly once)
    args = ["run", str(ROOT / "netlists/cuba.yaml"), "--json"]
    a = json.loads(CliRunner().invoke(app, args).stdout)
    b = json.loads(CliRunner().invoke(app, args).stdout)
    c = json.loads(CliRunner().invoke(app, args + ["--noise-seed", "5"]).stdout)
    assert a["populations"] == b["populations"]
    assert a["populations"] != c["populations"]


def test_overload_drops_on_bss2_and_not_on_ideal():
    path = str(ROOT / "netlists/overload.yaml")
    bss2 = json.loads(CliRunner().invoke(app, ["run", path, "--json"]).stdout)
    ideal = json.loads(CliRunner().invoke(app, ["run", path, "--json", "--profile", "ideal"]).stdout)
    assert bss2["dropped_events"] > 0
    for link in bss2["links"]:
        assert link["offered"] == link["delivered"] + link["dropped"]
    assert ideal["dropped_events"] == 0
    assert bss2["offered_events"] == pytest.approx(ideal["offered_events"], rel=0.01)


def test_graph_and_schema(tmp_path):
    result = CliRunner().invoke(app, ["graph", str(ROOT / "netlists/yinyang_bss2.yaml"), "--json",
                                      "--graphml", str(tmp_path / "g.graphml")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["links"] and (tmp_path / "g.graphml").exists()
    schema = json.loads(CliRunner().invoke(app, ["schema"]).stdout)
    assert "populations" in schema["properties"]


def test_training_progress_lines_name_the_epoch_and_its_eta(capsys, monkeypatch):
    """Off a terminal, training's progress lines say the epoch, its share done, the time it still
    needs and the running loss and accuracy the trainer reports."""
    import cli

    monkeypatch.delenv("CHIPCTL_PROGRESS", raising=False)
    bar = cli._EpochProgress("training x", every_s=0.0)
    bar.epochs = 2
    bar(0.25, "epoch 1/2 loss 1.000 acc 0.500")
    bar(0.75, "epoch 2/2 loss 0.500 acc 0.700")
    bar.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("chipctl: training x: epoch 1/2 50% after ")
    assert "s left in the epoch" in err[0] and err[0].endswith(", loss 1.000 acc 0.500")
    assert err[1].startswith("chipctl: training x: epoch 2/2 50% after ") and err[1].endswith("acc 0.700")
