"""The trainer: chip in the loop, rules as plugins, an optimizer on the host, checkpoints.

Job: run epochs of batches on the chip, call the rules' hooks around each run, step the optimizer
and write checkpoints. Boundary: the chip is reached only through ``chip.host`` (a checkpoint holds
``host.export_config()`` and is restored with ``host.import_config``), the rules only through
``rules.manager.RuleSet``; the optimizer is ``optimizer.py``, the checkpoint file ``checkpoints.py``.

Per batch: every rule says what it needs recorded, the chip runs the batch (rules may act on a
timer during the run), rules observe the result, regularizers add loss terms, gradient rules
return gradients, and the host-side optimizer (Adam on float master weights, as in-the-loop
training does on real hardware) writes the new weights through the host interface, where they
are quantized. The whole batch is one host transaction: a rule that raises is named, the batch's
writes are rolled back, the optimizer keeps its previous state, and the last checkpoint (written
atomically after every epoch) stays valid. Data order is a function of (seed, epoch) and the chip's
noise of (noise seed, run index), so ``--resume`` ends where an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from chip.host import PARAMETERS, HostInterface, RunResult
from chip.netlist import MembraneRecord, Netlist, Record

from ..api import Batch, Gradients, LossTerm, RunRequest
from ..manager import RuleSet
from ..tasks import make_task
from .checkpoints import checkpoint_lock, load_checkpoint, save_checkpoint
from .config import TrainConfig, parse_train
from .optimizer import Adam

__all__ = ["Trainer", "decode", "reconstruction"]



def decode(result: RunResult, output: str, how: str, window: tuple[float, float] | None = None) -> np.ndarray:
    """Predicted class per sample: earliest first spike (silent = never; all silent = -1), most
    spikes, or highest membrane sample (of the samples within ``window``, µs, if given)."""
    ev = result.spikes[output]
    if how == "first_spike":
        first = ev.first_spike_times()
        pred = np.argmin(first, axis=1)
        pred[~np.isfinite(first).any(axis=1)] = -1
        return pred
    if how == "spike_count":
        counts = ev.counts()
        pred = np.argmax(counts, axis=1)
        pred[counts.max(axis=1) == 0] = -1
        return pred
    tr = result.trace(output)
    values = tr.values
    if window is not None:
        keep = (tr.time_us >= window[0]) & (tr.time_us <= window[1])
        values = values[:, keep] if keep.any() else values
    return np.argmax(values.max(axis=1), axis=1)


def reconstruction(result: RunResult, output: str, v_leak, window: tuple[float, float] | None = None) -> np.ndarray:
    """An autoencoder's output: each ``output`` neuron's mean membrane (V − v_leak, model units)
    over its samples (those within ``window``, µs, if given), (batch, n)."""
    tr = result.trace(output)
    values = tr.values
    if window is not None:
        keep = (tr.time_us >= window[0]) & (tr.time_us <= window[1])
        values = values[:, keep] if keep.any() else values
    out = np.zeros((values.shape[0], len(v_leak)))
    cols = np.asarray(tr.neurons)
    out[:, cols] = values.mean(axis=1) - np.asarray(v_leak)[cols]
    return out


def _merge_requests(requests: dict[str, RunRequest | None], base: Record, host: HostInterface, output: str,
                    decoder: str) -> tuple[Record, float | None]:
    membrane: dict[str, set[int]] = {}
    correlations: set[str] = set(base.correlations)
    timer = None
    period = None
    if decoder == "max_membrane":
        membrane.setdefault(output, set()).update(range(host.populations[output]))
    for req in requests.values():
        if req is None:
            continue
        for pop, neurons in req.membrane.items():
            membrane.setdefault(pop, set()).update(int(n) for n in neurons)
        correlations.update(req.correlations)
        if req.timer_us is not None:
            timer = req.timer_us if timer is None else min(timer, req.timer_us)
        if req.membrane_period_us is not None:
            period = req.membrane_period_us if period is None else min(period, req.membrane_period_us)
    if period is None:
        period = host.profile.cadc_min_period_us or host.profile.step_us
    records = tuple(MembraneRecord(pop, tuple(sorted(ns)), "cadc", period) for pop, ns in membrane.items())
    record = Record(spikes=tuple(host.populations), membrane=records, correlations=tuple(sorted(correlations)))
    return record, timer


class Trainer:
    """Trains the netlist's chip with its ``train:`` block. ``extra_rules`` adds rules by name or
    ``module:Class`` (the CLI's ``--rule``)."""

    def __init__(self, netlist: Netlist, *, extra_rules: tuple[str, ...] = (), checkpoint: str | Path | None = None,
                 epochs: int | None = None, progress: Callable[[float, str], None] | None = None):
        self.netlist = netlist
        self.config = parse_train(netlist)
        if epochs is not None:
            self.config = dataclasses.replace(self.config, epochs=epochs)
        self.host = HostInterface(netlist)
        self.task = make_task(self.config.raw, netlist, field_line=lambda p: {
            "file": netlist.source_path, "line": netlist.line_of(p), "field": p})
        self.rules = RuleSet(self.config.rules + tuple(extra_rules), host=self.host, train=self.config.raw,
                             options=self.config.options, seed=self.config.seed)
        self.optimizer = Adam(self.config.lr, self.config.betas, self.config.eps, clip=self.config.clip)
        self.master: dict[str, np.ndarray] = {}
        # train.optimizer.ema: moving average of the master weights, the weights every test pass uses
        self.average: dict[str, np.ndarray] = {}
        self.checkpoint_dir = Path(checkpoint) if checkpoint else (
            Path(self.config.checkpoint) if self.config.checkpoint else None)
        self.epoch = 0
        self.history: list[dict] = []
        self.health: dict[str, float] = {}
        self.progress = progress
        self.on_epoch: Callable[[dict], None] | None = None
        self._lock_depth = 0
        self.x_train, self.y_train = self.task.data("train")
        self.x_test, self.y_test = self.task.data("test")
        self.rules.call("chipctl_configure")

    # ------------------------------------------------------------------ batches
    def _batch(self, x, y, idx, training: bool) -> Batch:
        targets = self.task.targets(x[idx]) if hasattr(self.task, "targets") else None
        return Batch(inputs={self.config.input: self.task.encode(x[idx])}, labels=y[idx], indices=idx,
                     training=training, targets=targets)

    def train_step(self, batch: Batch) -> dict:
        host, rules = self.host, self.rules
        with host.transaction():
            requests = rules.call("chipctl_run_request", batch=batch)
            record, timer_us = _merge_requests(requests, self.netlist.record, host, self.config.output,
                                               self.config.decode)
            timer = None
            if timer_us is not None:
                timer = (timer_us, lambda t: rules.call("chipctl_during_run", t_us=t))
            result = host.run(batch.inputs, batch=batch.size, record=record, timer=timer)
            rules.call("chipctl_run_finished", batch=batch, result=result)
            terms: list[LossTerm] = []
            for got in rules.call("chipctl_loss_terms", batch=batch, result=result).values():
                terms.extend(got or [])
            grads = [_checked_gradients(name, g, host) for name, g in
                     rules.call("chipctl_gradients", batch=batch, result=result, loss_terms=terms).items()
                     if g is not None]
            written, opt_state, new_master = self._apply(grads)
            rules.call("chipctl_after_update", batch=batch, written=written)
        # only now, with every hook through, does the optimizer move on
        if opt_state is not None:
            self.optimizer.commit(opt_state)
            self.master.update(new_master)
            if self.config.ema is not None:
                d = self.config.ema
                for key, value in new_master.items():
                    if key.startswith("w:"):
                        old = self.average.get(key)
                        self.average[key] = value.copy() if old is None else d * old + (1 - d) * value
        pred = decode(result, self.config.output, self.config.decode, self.config.decode_window)
        loss = sum(g.loss for g in grads) + sum(t.value for t in terms)
        rule_metrics = {}
        for g in grads:
            for key, value in g.metrics.items():
                # numbers (numpy's too) are averaged over the epoch, lists united, a dict of
                # numbers (say, per layer) is the epoch's last; anything else is not a metric
                if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                    rule_metrics[key] = float(value)
                elif isinstance(value, (list, tuple)):
                    rule_metrics[key] = sorted(set(rule_metrics.get(key, [])) | set(value))
                elif isinstance(value, dict):
                    rule_metrics[key] = {str(k): float(v) for k, v in value.items()
                                         if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        return {"loss": float(loss), "correct": int(np.sum(pred == batch.labels)), "n": batch.size,
                "rule_metrics": rule_metrics}

    def _apply(self, grads: list[Gradients]):
        if not grads:
            return {}, None, {}
        total: dict[str, np.ndarray] = {}
        for g in grads:
            for proj, dw in g.weights.items():
                total[f"w:{proj}"] = total.get(f"w:{proj}", 0.0) + dw
            for (pop, name), dp in g.params.items():
                total[f"p:{pop}:{name}"] = total.get(f"p:{pop}:{name}", 0.0) + dp
        params = {}
        for key in total:
            if key in self.master:
                params[key] = self.master[key]
            else:
                # a master copy starts from what the chip holds; it is kept only if the batch
                # goes through (train_step commits it with the optimizer's state)
                kind, *rest = key.split(":")
                params[key] = (self.host.read_weights(rest[0]) if kind == "w"
                               else self.host.read_params(rest[0], rest[1])).astype(np.float64)
        lrs = {key: self.config.lr_params[key.split(":")[2]] * self.optimizer.lr / self.config.lr
               for key in total if key.startswith("p:") and key.split(":")[2] in self.config.lr_params
               and self.config.lr > 0}
        new, state = self.optimizer.step(params, total, lrs=lrs)
        written = {}
        for key, value in new.items():
            kind, *rest = key.split(":")
            if kind == "w":
                value = new[key] = self._clipped(rest[0], value)
                written[rest[0]] = self.host.write_weights(rest[0], value)
            else:
                written[(rest[0], rest[1])] = self.host.write_params(rest[0], rest[1], value)
        return written, state, new

    def _clipped(self, proj_name: str, value: np.ndarray) -> np.ndarray:
        if not self.config.weight_clip:
            return value
        fs = self.host.read_params(self.host.projection(proj_name).post, "weight_full_scale")[None, :]
        return np.clip(value, -fs, fs)

    def _write_master(self, which: dict[str, np.ndarray]) -> None:
        """Write float weights (``w:<projection>`` keys) to the chip, which quantizes them as always."""
        for key, value in which.items():
            if key.startswith("w:"):
                self.host.write_weights(key[2:], self._clipped(key[2:], value))

    # ------------------------------------------------------------------ evaluation
    def eval_noise_base(self) -> int:
        """Noise seed of this epoch's evaluation runs (a batch from sample ``start`` adds ``start``):
        evaluation noise comes from its own stream, so evaluating never shifts training's noise."""
        return self.host.profile.noise_seed + 7919 * (1 + self.epoch)

    def eval_runs(self, x, y, record, noise_base: int | None = None):
        """Run the samples ``x``/``y`` in test batches as :meth:`evaluate` does, yielding ``(batch,
        result)``; noise from ``noise_base`` (default :meth:`eval_noise_base`). Evaluation runs do
        not count: the host's run counter is back where it was once the last batch has run."""
        base = self.eval_noise_base() if noise_base is None else noise_base
        bs = self.config.test_batch_size
        snapshot_runs = self.host.runs_done
        for start in range(0, len(y), bs):
            idx = np.arange(start, min(start + bs, len(y)))
            batch = self._batch(x, y, idx, training=False)
            yield batch, self.host.run(batch.inputs, batch=batch.size, record=record, noise_seed=base + start)
        self.host.runs_done = snapshot_runs

    def evaluate(self, split: str = "test") -> float:
        """Accuracy on ``split``; the same runs give the network's health (:attr:`health`): per
        hidden population (every one but the output) the fraction of dead neurons (no spike over
        the whole split) and of bursting ones (a mean count per sample of at least 90 % of the most
        the neuron can fire: one spike per step, or one per refractory period when that is
        longer; a neuron that cannot fire twice in a run is never counted as bursting), over all
        hidden neurons ``dead_fraction`` / ``bursting_fraction``, and for tasks
        with targets the ``reconstruction_mse`` of the output's mean membrane (model units above
        v_leak, over ``decode_window``) against them."""
        x, y = (self.x_test, self.y_test) if split == "test" else (self.x_train, self.y_train)
        targets_of = getattr(self.task, "targets", None)
        record, _ = _merge_requests({}, self.netlist.record, self.host, self.config.output,
                                    "max_membrane" if targets_of is not None else self.config.decode)
        correct = 0
        hidden = [p for p in self.host.populations if p != self.config.output]
        counts = {p: np.zeros(self.host.populations[p]) for p in hidden}
        sq_err, n_err = 0.0, 0
        duration = None
        for batch, result in self.eval_runs(x, y, record):
            correct += int(np.sum(decode(result, self.config.output, self.config.decode,
                                         self.config.decode_window) == batch.labels))
            duration = result.duration_us
            for p in hidden:
                counts[p] += result.spikes[p].counts().sum(axis=0)
            if targets_of is not None:
                recon = reconstruction(result, self.config.output,
                                       self.host.read_params(self.config.output, "v_leak"), self.config.decode_window)
                sq_err += float(np.sum((recon - batch.targets.reshape(recon.shape)) ** 2))
                n_err += recon.size
        health: dict[str, float] = {}
        dead_all = burst_all = n_all = 0
        step = float(self.host.profile.step_us)
        for p in hidden:
            per_sample = counts[p] / len(y)
            tref = np.asarray(self.host.read_params(p, "tau_ref_us"), dtype=np.float64)
            most = duration / np.maximum(step, tref)
            dead = counts[p] == 0
            # a neuron whose refractory time is as long as the run can fire once: it cannot burst
            burst = (most >= 2) & (per_sample >= 0.9 * most)
            health[f"dead_fraction_{p}"] = float(dead.mean())
            health[f"bursting_fraction_{p}"] = float(burst.mean())
            dead_all, burst_all, n_all = dead_all + int(dead.sum()), burst_all + int(burst.sum()), n_all + len(dead)
        if n_all:
            health["dead_fraction"] = dead_all / n_all
            health["bursting_fraction"] = burst_all / n_all
        if n_err:
            health["reconstruction_mse"] = sq_err / n_err
        self.health = health
        return correct / len(y)

    def reconstructions(self, count: int = 10, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """(targets, reconstructions) of the first ``count`` samples of ``split``, for a picture."""
        x, y = (self.x_test, self.y_test) if split == "test" else (self.x_train, self.y_train)
        idx = np.arange(min(count, len(y)))
        batch = self._batch(x, y, idx, training=False)
        record, _ = _merge_requests({}, self.netlist.record, self.host, self.config.output, "max_membrane")
        snapshot_runs = self.host.runs_done
        result = self.host.run(batch.inputs, batch=batch.size, record=record, noise_seed=self.eval_noise_base())
        self.host.runs_done = snapshot_runs
        recon = reconstruction(result, self.config.output, self.host.read_params(self.config.output, "v_leak"),
                               self.config.decode_window)
        return batch.targets.reshape(recon.shape), recon

    # ------------------------------------------------------------------ epochs and checkpoints
    @contextlib.contextmanager
    def locked(self):
        """Hold the checkpoint folder (``checkpoints.checkpoint_lock``) for the block; re-entrant,
        nothing to hold without a checkpoint folder."""
        if self.checkpoint_dir is None or self._lock_depth:
            self._lock_depth += 1
            try:
                yield self
            finally:
                self._lock_depth -= 1
            return
        with checkpoint_lock(self.checkpoint_dir):
            self._lock_depth += 1
            try:
                yield self
            finally:
                self._lock_depth -= 1

    def fit(self) -> dict:
        with self.locked():
            return self._fit()

    def _fit(self) -> dict:
        start = time.perf_counter()
        cfg = self.config
        while self.epoch < cfg.epochs:
            epoch = self.epoch
            self.optimizer.lr = cfg.lr * cfg.gamma ** epoch
            self.rules.call("chipctl_epoch_started", epoch=epoch)
            order = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.y_train))
            losses, correct, seen = [], 0, 0
            n_batches = int(np.ceil(len(order) / cfg.batch_size))
            rule_sums: dict[str, float] = {}
            rule_lists: dict[str, list] = {}
            rule_dicts: dict[str, dict] = {}
            t_epoch = time.perf_counter()
            for i in range(n_batches):
                self.rules.set_progress(epoch, i)
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                out = self.train_step(self._batch(self.x_train, self.y_train, idx, training=True))
                losses.append(out["loss"])
                for key, value in out["rule_metrics"].items():
                    if isinstance(value, float):
                        rule_sums[key] = rule_sums.get(key, 0.0) + value / n_batches
                    elif isinstance(value, dict):
                        rule_dicts[key] = value
                    else:
                        rule_lists[key] = sorted(set(rule_lists.get(key, [])) | set(value))
                correct += out["correct"]
                seen += out["n"]
                if self.progress:
                    self.progress((epoch + (i + 1) / n_batches) / cfg.epochs,
                                  f"epoch {epoch + 1}/{cfg.epochs} loss {np.mean(losses):.3f} acc {correct / seen:.3f}")
            metrics = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "train_accuracy": correct / seen,
                       "epoch_wall_s": time.perf_counter() - t_epoch}
            metrics.update({f"rule_{k}": v for k, v in rule_sums.items() if k != "accuracy"})
            metrics.update({f"rule_{k}": v for k, v in rule_lists.items()})
            metrics.update({f"rule_{k}": v for k, v in rule_dicts.items()})
            if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
                if self.average:
                    # weight averaging: test the averaged weights; training goes on from the master
                    # copy, and after the last epoch the chip keeps the averaged (tested) weights
                    self._write_master(self.average)
                metrics["test_accuracy"] = self.evaluate("test")
                metrics.update(self.health)
                if self.average and epoch + 1 < cfg.epochs:
                    self._write_master(self.master)
            for extra in self.rules.call("chipctl_epoch_finished", epoch=epoch, metrics=metrics).values():
                if extra:
                    metrics.update(extra)
            self.history.append(metrics)
            self.epoch = epoch + 1
            if self.checkpoint_dir is not None:
                self.save()
            if self.on_epoch is not None:
                self.on_epoch(metrics)
        last = self.history[-1] if self.history else {}
        health = {k: last[k] for k in ("dead_fraction", "bursting_fraction", "reconstruction_mse") if k in last}
        return {**health, "epochs": self.epoch, "train_accuracy": last.get("train_accuracy"),
                "test_accuracy": last.get("test_accuracy"), "train_loss": last.get("train_loss"),
                "wall_s": time.perf_counter() - start, "history": self.history}

    def save(self) -> Path:
        rule_states = {name: s for name, s in self.rules.call("chipctl_state").items() if s}
        payload = {
            "epoch": self.epoch,
            "history_json": _json_list(self.history),
            "chip": self.host.export_config(),
            "master": {k.replace(":", "|"): v for k, v in self.master.items()},
            "average": {k.replace(":", "|"): v for k, v in self.average.items()},
            "adam_m": {k.replace(":", "|"): v for k, v in self.optimizer.m.items()},
            "adam_v": {k.replace(":", "|"): v for k, v in self.optimizer.v.items()},
            "adam_t": self.optimizer.t,
            "rules": rule_states,
        }
        return save_checkpoint(self.checkpoint_dir, payload)

    def resume(self) -> dict:
        """Continue from the checkpoint: the chip (``load_chip``), the run counter, the optimizer,
        the epoch, the metrics so far and every rule's state. Returns ``load_chip``'s report."""
        from chip.errors import CheckpointError

        if self.checkpoint_dir is None:
            raise CheckpointError("--resume needs a checkpoint directory (train.checkpoint or --checkpoint)")
        with self.locked():
            data = load_checkpoint(self.checkpoint_dir)
            try:
                return self._resume(data)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{self.checkpoint_dir}: incomplete checkpoint ({type(exc).__name__}: "
                                      f"{exc})") from None

    def _resume(self, data: dict) -> dict:
        import json

        report = self.load_chip(data)
        self.master = {k.replace("|", ":"): np.asarray(v) for k, v in data.get("master", {}).items()}
        self.average = {k.replace("|", ":"): np.asarray(v) for k, v in data.get("average", {}).items()}
        if self.average:
            # the chip was saved holding the averaged weights; training goes on from the master copy
            self._write_master(self.master)
        self.optimizer.load({"m": {k.replace("|", ":"): v for k, v in data.get("adam_m", {}).items()},
                             "v": {k.replace("|", ":"): v for k, v in data.get("adam_v", {}).items()},
                             "t": data.get("adam_t", 0)})
        self.epoch = int(data["epoch"])
        self.host.runs_done = report["runs_done"]
        self.history = json.loads(data.get("history_json", "[]"))
        saved = data.get("rules", {})
        for name in self.rules.rules:
            if name in saved:
                self.rules.call_one(name, "chipctl_load_state", state=saved[name])
        return report

    def load_chip(self, data: dict) -> dict:
        """Put a checkpoint's chip configuration on this host with ``host.import_config``: one line
        (CheckpointError) for another netlist or another kind of chip; on another die of the same
        profile the trained nominal values, quantized by this chip. Returns its report
        (``same_die``, ``trained_die_seed``, ``die_seed``, ``runs_done``)."""
        from chip.errors import CheckpointError

        try:
            return self.host.import_config(data.get("chip"))
        except CheckpointError as exc:
            raise CheckpointError(f"{self.checkpoint_dir}: {exc}") from None


def _checked_gradients(name: str, grads, host: HostInterface) -> Gradients:
    """A rule's gradients as the optimizer can use them, or a RuleError naming the rule: the right
    type, known projections and parameters, the right shapes, every number finite (a NaN would
    otherwise be refused by the host's write with no word of which rule made it)."""
    from chip.errors import RuleError

    def fail(message):
        raise RuleError(message, plugin=name, hook="chipctl_gradients")

    if not isinstance(grads, Gradients):
        fail(f"returned {type(grads).__name__}, not Gradients")
    try:
        loss = float(grads.loss)
    except (TypeError, ValueError):
        fail(f"loss must be a number, got {grads.loss!r}")
    if not np.isfinite(loss):
        fail(f"loss is {loss}")
    for proj, dw in grads.weights.items():
        if proj not in host.mapped.projections:
            fail(f"gradient for unknown projection {proj!r}")
        dw = np.asarray(dw)
        shape = host.mapped.projections[proj].shape
        if dw.shape != shape or not np.issubdtype(dw.dtype, np.number):
            fail(f"gradient for {proj!r} must be numbers of shape {shape}, got {dw.dtype} {dw.shape}")
        if not np.all(np.isfinite(dw)):
            fail(f"gradient for {proj!r} has {int(np.sum(~np.isfinite(dw)))} non-finite entries (NaN or inf)")
    for key, dp in grads.params.items():
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] in host.mapped.populations
                and key[1] in PARAMETERS):
            fail(f"gradient for unknown parameter {key!r} (expected (population, parameter))")
        dp = np.asarray(dp)
        n = host.mapped.populations[key[0]].size
        if dp.shape not in ((), (n,)) or not np.issubdtype(dp.dtype, np.number):
            fail(f"gradient for {key!r} must be numbers of shape ({n},), got {dp.dtype} {dp.shape}")
        if not np.all(np.isfinite(dp)):
            fail(f"gradient for {key!r} has non-finite entries (NaN or inf)")
    return grads


def _json_list(history):
    import json

    def plain(value):  # numpy numbers and arrays a rule put into its metrics
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        raise TypeError(f"a metric of type {type(value).__name__} cannot be stored in a checkpoint")

    return json.dumps(history, default=plain)
