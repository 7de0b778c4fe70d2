#!/usr/bin/env python3
"""The non-spiking baseline of the digits autoencoder: a numpy autoencoder of the same shape as a
digits netlist (input -> hidden -> output sizes from the netlist, no biases, as the chip's
projections have none), ReLU hidden units and a linear output (the readout's membrane is
linear), trained on the same split, batch size, epochs and learning rate with the same Adam
(``rules.training.optimizer.Adam``), on the same loss (MSE against the image in [0, 1]).

    python benchmarks/autoencoder_baseline.py netlists/digits_ae_bss2.yaml --seeds 1 2 3

Prints the test MSE per seed (the initial weights' seed) and their mean and spread; ``--json``
prints one JSON object. ``--epochs`` and ``--lr`` override the netlist's.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def train_baseline(x_tr, x_te, n_hidden, *, lr, betas, eps, epochs, batch_size, gamma, seed, order_seed):
    from rules.training.optimizer import Adam

    rng = np.random.default_rng(seed)
    n_in = x_tr.shape[1]
    params = {"w1": rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_hidden)),
              "w2": rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_hidden, n_in))}
    opt = Adam(lr, betas, eps)

    def forward(x):
        a = x @ params["w1"]
        h = np.maximum(a, 0.0)
        return a, h, h @ params["w2"]

    history = []
    for epoch in range(epochs):
        opt.lr = lr * gamma ** epoch
        order = np.random.default_rng([order_seed, epoch]).permutation(len(x_tr))
        for i in range(0, len(order), batch_size):
            x = x_tr[order[i:i + batch_size]]
            a, h, y = forward(x)
            gy = 2.0 * (y - x) / y.size
            grads = {"w2": h.T @ gy}
            gh = gy @ params["w2"].T * (a > 0)
            grads["w1"] = x.T @ gh
            new, state = opt.step(params, grads)
            opt.commit(state)
            params.update(new)
        history.append(float(np.mean((forward(x_te)[2] - x_te) ** 2)))
    dead = float(np.mean(np.all(forward(x_te)[1] == 0, axis=0)))
    return history, dead


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="override the netlist's learning rate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from chip.netlist import load_netlist
    from rules.tasks import make_task
    from rules.training.config import parse_train

    nl = load_netlist(args.netlist)
    cfg = parse_train(nl)
    task = make_task(cfg.raw, nl)
    if not hasattr(task, "targets"):
        print(f"{args.netlist}: train.task {cfg.task!r} has no targets: not an autoencoder", file=sys.stderr)
        return 2
    x_tr, _ = task.data("train")
    x_te, _ = task.data("test")
    x_tr, x_te = task.targets(x_tr), task.targets(x_te)
    hidden = [p for p in nl.populations if p != cfg.output]
    n_hidden = sum(nl.populations[p].size for p in hidden)
    epochs = args.epochs or cfg.epochs
    lr = args.lr if args.lr is not None else cfg.lr
    runs = {}
    for seed in args.seeds:
        history, dead = train_baseline(x_tr, x_te, n_hidden, lr=lr, betas=cfg.betas, eps=cfg.eps, epochs=epochs,
                                       batch_size=cfg.batch_size, gamma=cfg.gamma, seed=seed, order_seed=cfg.seed)
        runs[seed] = {"test_mse": history[-1], "history": history, "dead_fraction": dead}
    finals = np.array([r["test_mse"] for r in runs.values()])
    out = {"netlist": nl.name, "shape": [x_tr.shape[1], n_hidden, x_tr.shape[1]], "epochs": epochs,
           "train_size": len(x_tr), "test_size": len(x_te), "lr": lr, "batch_size": cfg.batch_size,
           "seeds": runs, "mean_test_mse": float(finals.mean()), "std_test_mse": float(finals.std(ddof=1))
           if len(finals) > 1 else 0.0, "mean_image_mse": float(np.mean((x_te - x_tr.mean(axis=0)) ** 2))}
    if args.json:
        print(json.dumps(out))
    else:
        for seed, r in runs.items():
            print(f"seed {seed}: test MSE {r['test_mse']:.4f}  (dead ReLUs {r['dead_fraction']:.2f})")
        print(f"{nl.name} non-spiking {out['shape']}: test MSE {out['mean_test_mse']:.4f} ± {out['std_test_mse']:.4f} "
              f"over {len(finals)} seeds, {epochs} epochs, lr {lr:g}; the mean image scores {out['mean_image_mse']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
