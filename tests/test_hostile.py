"""A corpus of hostile netlists and command lines: each gets exit 2, one line on stderr naming the
file (and line and field where there is one), nothing on stdout, no traceback.

Every case runs in this process (the command line's own entry point, fast), and the ones marked
``measured`` also as a user would, in a child process under a CPU-time limit (RLIMIT_CPU, 20 s: a
runaway is killed, not waited for) with the peak memory the child made (resident, less the
shared libraries it mapped: tests/measure.py) under 200 MB; ``-m slow`` measures every case that
way. Typical figures: 0.2-1.2 s of CPU, 18-70 MB."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.measure import run_chipctl

ROOT = Path(__file__).resolve().parents[1]
SINGLE = (ROOT / "netlists/single_neuron.yaml").read_text()
SN = str(ROOT / "netlists/single_neuron.yaml")
YY = str(ROOT / "netlists/yinyang_ideal.yaml")
MAX_MB = 200


@dataclass
class Case:
    id: str
    args: list[str]                      # "{d}" is the case's folder
    files: dict[str, object] = field(default_factory=dict)  # name -> text, bytes or fn(path)
    starts: str = ""                     # what stderr starts with ("{d}" as above)
    contains: str = ""
    env: dict[str, str] = field(default_factory=dict)
    measured: bool = False               # also in a child process in the default suite


def single(old: str, new: str, count: int = 1) -> str:
    assert old in SINGLE, old
    return SINGLE.replace(old, new, count)


def bomb(levels: int = 9) -> str:
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


POISSON = ("name: p\nduration: 10 s\nchip: {profile: bss2}\npopulations:\n  n: {size: 4}\ninputs:\n"
           "  p: {size: 50, type: poisson, rate: 1 MHz}\nprojections:\n  d: {pre: p, post: n, weights: 0.1}\n")
FILE_INPUT = "    type: spikes\n    times: [[5 us, 7 us, 9 us, 30 us]]"
NO_EXPECT = SINGLE.split("# Regression expectations")[0]


def npz(**arrays) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


TRAINED = ("name: tiny\nduration: 30 us\nchip: {profile: bss2}\npopulations:\n"
           "  out: {size: 3, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 2}}\n"
           "inputs:\n  in: {size: 5, type: spikes, times: [[], [], [], [], []]}\n"
           "projections:\n  in_out: {pre: in, post: out, weights: {uniform: {low: 0.5, high: 1.5}, seed: 3}}\n"
           "train:\n  task: yinyang\n  input: in\n  output: out\n  encoding: {duplicate: 1}\n  epochs: 1\n"
           "  batch_size: 32\n  train_size: 32\n  test_size: 32\n")

CASES = [
    # --- YAML itself: size, nesting, aliases, tags, encoding
    Case("alias_bomb", ["validate", "{d}/n.yaml"], {"n.yaml": bomb()}, "{d}/n.yaml:", "expands to more than"),
    Case("merge_key_bomb", ["validate", "{d}/n.yaml"],
         {"n.yaml": "b: &b {" + ", ".join(f"k{i}: {i}" for i in range(1000)) + "}\n"
                    + "".join(f"m{j}: {{<<: *b}}\n" for j in range(300))}, "{d}/n.yaml:", "expands to more than"),
    Case("deep_flow_nesting", ["validate", "{d}/n.yaml"], {"n.yaml": "a: " + "[" * 100_000 + "]" * 100_000 + "\n"},
         "{d}/n.yaml:1:", "nested deeper than"),
    Case("deep_block_nesting", ["validate", "{d}/n.yaml"],
         {"n.yaml": "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x\n"},
         "{d}/n.yaml:", "nested deeper than"),
    Case("huge_document", ["validate", "{d}/n.yaml"], {"n.yaml": "# " + "x" * (5 << 20) + "\n"},
         "{d}/n.yaml:", "characters long"),
    Case("python_tag", ["validate", "{d}/n.yaml"],
         {"n.yaml": single("name: single_neuron", 'name: !!python/object/apply:os.system ["echo hi"]')},
         "{d}/n.yaml:3: name:", "unsupported YAML tag"),
    Case("binary_file", ["validate", "{d}/n.yaml"], {"n.yaml": bytes(range(256)) * 10}, "{d}/n.yaml:", "not UTF-8"),
    Case("empty_file", ["validate", "{d}/n.yaml"], {"n.yaml": ""}, "{d}/n.yaml:", "empty"),
    Case("top_level_list", ["validate", "{d}/n.yaml"], {"n.yaml": "- a\n- b\n"}, "{d}/n.yaml:1:", "expected a mapping"),
    Case("top_level_scalar", ["validate", "{d}/n.yaml"], {"n.yaml": "hello\n"}, "{d}/n.yaml:1:", "expected a mapping"),
    Case("tab_indent", ["validate", "{d}/n.yaml"], {"n.yaml": single("    size: 1", "\tsize: 1")},
         "{d}/n.yaml:10:", "YAML syntax error"),
    Case("very_long_key", ["validate", "{d}/n.yaml"],
         {"n.yaml": single("description:", "x" * 100_000 + ": 1\ndescription:")}, "{d}/n.yaml:", "YAML syntax error"),
    Case("nul_in_name", ["validate", "{d}/n.yaml"], {"n.yaml": single("  neuron:\n    size: 1", '  "\\u0000bad":\n    size: 1')},
         "{d}/n.yaml:9:", "\\x00bad"),
    Case("netlist_is_a_folder", ["validate", "{d}"], {}, "{d}:", "not a regular file"),
    Case("netlist_is_a_device", ["validate", "/dev/zero"], {}, "/dev/zero:", "not a regular file"),
    Case("netlist_missing", ["run", "{d}/nope.yaml"], {}, "{d}/nope.yaml:", "not found"),
    # --- numbers: finite, in range, of the right kind
    Case("duration_1e400", ["run", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: 1e400 us")},
         "{d}/n.yaml:5: duration:", "out of range"),
    Case("duration_nan", ["validate", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: .nan us")},
         "{d}/n.yaml:5: duration:", ""),
    Case("duration_inf", ["validate", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: .inf")},
         "{d}/n.yaml:5: duration:", ""),
    Case("duration_negative", ["validate", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: -5 us")},
         "{d}/n.yaml:5: duration:", "> 0"),
    Case("batch_bigint", ["validate", "{d}/n.yaml"],
         {"n.yaml": single("duration: 60 us", "duration: 60 us\nbatch: " + "9" * 40)}, "{d}/n.yaml:6: batch:", "out of range"),
    Case("batch_float", ["validate", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: 60 us\nbatch: 2.5")},
         "{d}/n.yaml:6: batch:", "integer"),
    Case("die_seed_huge", ["validate", "{d}/n.yaml"],
         {"n.yaml": single("  profile: bss2\n", "  profile: bss2\n  die_seed: " + "9" * 40 + "\n")},
         "{d}/n.yaml:8: chip.die_seed:", ""),
    Case("poisson_rate_inf", ["validate", "{d}/n.yaml"], {"n.yaml": POISSON.replace("1 MHz", "1e999 Hz")},
         "{d}/n.yaml:7: inputs.p.rate:", "out of range"),
    # --- runs too big for the machine: refused before anything is allocated
    Case("duration_huge", ["run", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: 1e9 s")},
         "{d}/n.yaml:5: duration:", "steps per run"),
    Case("batch_huge", ["run", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: 60 us\nbatch: 100000000")},
         "{d}/n.yaml:6: batch:", "GiB"),
    Case("batch_huge_on_command_line", ["run", SN, "--batch", "1000000000"], {}, f"{SN}: batch:", "neuron-steps"),
    Case("poisson_too_many_events", ["run", "{d}/n.yaml"], {"n.yaml": POISSON}, "{d}/n.yaml:7: inputs.p.rate:",
         "Poisson events"),
    Case("recording_too_long", ["run", "{d}/n.yaml"], {"n.yaml": single("duration: 60 us", "duration: 20 s")},
         "{d}/n.yaml:33: record.membrane.0:", "membrane samples", {"CHIPCTL_MAX_MEMORY": "256M"}),
    Case("limit_in_environment_garbage", ["validate", SN], {}, "<environment>:", "CHIPCTL_MAX_MEMORY",
         {"CHIPCTL_MAX_MEMORY": "lots"}),
    # --- values the chip cannot hold
    Case("weight_above_full_scale", ["validate", "{d}/n.yaml"], {"n.yaml": single("weights: 1.6", "weights: 2.5")},
         "{d}/n.yaml:29: projections.drive.weights:", "would be clipped"),
    Case("param_out_of_range", ["validate", "{d}/n.yaml"], {"n.yaml": single("tau_mem: 10 us", "tau_mem: 10 s")},
         "{d}/n.yaml:13: populations.neuron.params.tau_mem:", "outside what the bss2 chip can hold"),
    Case("full_scale_out_of_range", ["run", "{d}/n.yaml"],
         {"n.yaml": single("weight_full_scale: 2.0", "weight_full_scale: 200")},
         "{d}/n.yaml:19: populations.neuron.params.weight_full_scale:", "outside"),
    # --- spike files
    Case("spike_file_2d", ["validate", "{d}/n.yaml"],
         {"n.yaml": single(FILE_INPUT, "    type: file\n    path: s.npz"),
          "s.npz": npz(neuron=np.zeros((2, 2), int), time_us=np.ones((2, 2)))},
         "{d}/n.yaml:24: inputs.stimulus.path:", "1-D"),
    Case("spike_file_objects", ["validate", "{d}/n.yaml"],
         {"n.yaml": single(FILE_INPUT, "    type: file\n    path: s.npz"),
          "s.npz": npz(neuron=np.array([object(), 1], dtype=object), time_us=np.array([1.0, 2.0]))},
         "{d}/n.yaml:24: inputs.stimulus.path:", "Python objects"),
    Case("spike_file_not_npz", ["validate", "{d}/n.yaml"],
         {"n.yaml": single(FILE_INPUT, "    type: file\n    path: /etc/passwd")},
         "{d}/n.yaml:24: inputs.stimulus.path:", "cannot read spike file"),
    Case("spike_file_missing", ["validate", "{d}/n.yaml"],
         {"n.yaml": single(FILE_INPUT, "    type: file\n    path: nothere.npz")},
         "{d}/n.yaml:24: inputs.stimulus.path:", ""),
    # --- train: and expect: blocks, rules
    Case("train_typo", ["validate", "{d}/n.yaml"],
         {"n.yaml": NO_EXPECT + "train:\n  task: yinyang\n  input: stimulus\n  output: neuron\n  epohcs: 3\n"},
         "{d}/n.yaml:38: train.epohcs:", "did you mean 'epochs'"),
    Case("expect_typo", ["validate", "{d}/n.yaml"],
         {"n.yaml": single("        neuron: {count: 1}", "        neuron: {cuont: 1}")},
         "{d}/n.yaml:40: expect.runs.0.spikes.neuron.cuont:", "did you mean 'count'"),
    Case("rules_empty", ["validate", "{d}/n.yaml"],
         {"n.yaml": NO_EXPECT + "train:\n  task: yinyang\n  input: stimulus\n  output: neuron\n  rules: []\n"},
         "{d}/n.yaml:38: train.rules:", "at least one rule"),
    Case("rule_unknown", ["train", YY, "--rule", "nosuch", "--epochs", "1"], {}, "chipctl: unknown rule 'nosuch'", ""),
    Case("rule_not_a_rule", ["train", YY, "--rule", "os:path", "--epochs", "1"], {}, "chipctl: rule 'os:path':",
         "not a rule"),
    Case("rule_module_missing", ["train", YY, "--rule", "no_such_module:Rule", "--epochs", "1"], {},
         "chipctl: rule 'no_such_module:Rule':", "cannot import"),
    # --- the command line
    Case("profile_unknown", ["run", SN, "--profile", "bss3"], {}, f"{SN}: chip.profile:", "unknown chip profile"),
    Case("batch_zero", ["run", SN, "--batch", "0"], {}, "chipctl: Invalid value for '--batch'", ""),
    Case("epochs_zero", ["train", YY, "--epochs", "0"], {}, "chipctl: Invalid value for '--epochs'", ""),
    Case("unknown_option", ["run", SN, "--bogus"], {}, "chipctl: No such option: --bogus", ""),
    Case("unknown_command", ["frobnicate"], {}, "chipctl: No such command", ""),
    # --- output paths, checked before the run
    Case("out_is_a_file", ["run", SN, "--out", "{d}/afile"], {"afile": "x"}, "{d}/afile: --out:", "not a folder"),
    Case("out_unwritable", ["run", SN, "--out", "/proc/chipctl-out"], {}, "/proc/chipctl-out: --out:", "cannot write"),
    Case("out_below_a_file", ["run", SN, "--out", "{d}/afile/sub"], {"afile": "x"}, "{d}/afile/sub: --out:", ""),
    Case("graphml_missing_folder", ["graph", SN, "--graphml", "{d}/no/g.graphml"], {}, "{d}/no/g.graphml: --graphml:",
         "no folder"),
    Case("graphml_is_a_folder", ["graph", SN, "--graphml", "{d}"], {}, "{d}: --graphml:", "is a folder"),
    Case("train_checkpoint_is_a_file", ["train", "{d}/t.yaml", "--checkpoint", "{d}/afile"],
         {"t.yaml": TRAINED, "afile": "x"}, "{d}/afile: --checkpoint:", "not a folder"),
    # --- checkpoints: missing, garbage, another netlist or kind of chip
    Case("eval_checkpoint_is_a_file", ["eval", "{d}/t.yaml", "--checkpoint", "{d}/afile"],
         {"t.yaml": TRAINED, "afile": "x"}, "{d}/afile:", "is a file"),
    Case("eval_checkpoint_missing", ["eval", "{d}/t.yaml", "--checkpoint", "{d}/nock"], {"t.yaml": TRAINED},
         "{d}/nock/checkpoint.npz:", "no checkpoint"),
    Case("eval_checkpoint_garbage", ["eval", "{d}/t.yaml", "--checkpoint", "{d}/ck"],
         {"t.yaml": TRAINED, "ck/checkpoint.npz": b"PK\x03\x04garbage"}, "{d}/ck/checkpoint.npz:", "unreadable"),
    Case("eval_checkpoint_other_profile", ["eval", "{d}/t.yaml", "--checkpoint", "{trained}", "--profile", "ideal"],
         {"t.yaml": TRAINED}, "{trained}:", "chip profile bss2"),
    Case("eval_checkpoint_other_netlist", ["eval", "{d}/t.yaml", "--checkpoint", "{trained}"],
         {"t.yaml": TRAINED.replace("name: tiny", "name: other")}, "{trained}:", "netlist 'tiny'"),
    Case("resume_checkpoint_other_netlist", ["train", "{d}/t.yaml", "--checkpoint", "{trained}", "--resume"],
         {"t.yaml": TRAINED.replace("size: 3", "size: 4")}, "{trained}:", ""),
]


MEASURED = {"alias_bomb", "deep_flow_nesting", "huge_document", "duration_1e400", "batch_huge",
            "poisson_too_many_events", "out_unwritable", "eval_checkpoint_other_profile", "unknown_option",
            "spike_file_objects"}
for _case in CASES:
    _case.measured = _case.id in MEASURED


def test_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A checkpoint of TRAINED (one short epoch on bss2), for the mismatch cases."""
    from chip.netlist import load_netlist
    from rules.training import Trainer

    tmp = tmp_path_factory.mktemp("trained")
    (tmp / "t.yaml").write_text(TRAINED)
    Trainer(load_netlist(tmp / "t.yaml"), checkpoint=tmp / "ck").fit()
    return tmp / "ck"


def _materialize(case: Case, d: Path, trained: str) -> Callable[[str], str]:
    for name, content in case.files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return lambda s: s.replace("{d}", str(d)).replace("{trained}", trained)


def _trained(case: Case, request) -> str:
    return str(request.getfixturevalue("trained")) if any("{trained}" in a for a in case.args) else ""


def _check(case: Case, fill, code, stdout: str, stderr: str) -> None:
    lines = stderr.splitlines()
    assert code == 2, f"exit {code}: {stderr[-2000:]}"
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stdout == ""
    assert lines[0].startswith(fill(case.starts)), lines[0]
    assert fill(case.contains) in lines[0], lines[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input_gets_one_line_and_exit_2(case, tmp_path, request, capsys, monkeypatch):
    from cli import app

    fill = _materialize(case, tmp_path, _trained(case, request))
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        app(args=[fill(a) for a in case.args], prog_name="chipctl")
    out, err = capsys.readouterr()
    _check(case, fill, exit_.value.code, out, err)


def _measured(case, tmp_path, request):
    fill = _materialize(case, tmp_path, _trained(case, request))
    got = run_chipctl([fill(a) for a in case.args], cpu_limit_s=20, env={**os.environ, **case.env})
    _check(case, fill, got.returncode, got.stdout, got.stderr)
    assert got.peak_mb < MAX_MB, f"{got.peak_mb:.0f} MB"
    # the figures go to the note (pytest -s), not into asserts on time
    print(f"{case.id}: cpu {got.cpu_s:.2f} s, peak {got.peak_mb:.0f} MB")


@pytest.mark.parametrize("case", [c for c in CASES if c.measured], ids=lambda c: c.id)
def test_hostile_input_in_a_child_process_is_bounded(case, tmp_path, request):
    _measured(case, tmp_path, request)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if not c.measured], ids=lambda c: c.id)
def test_every_hostile_input_in_a_child_process_is_bounded(case, tmp_path, request):
    _measured(case, tmp_path, request)
