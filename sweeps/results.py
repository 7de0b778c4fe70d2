"""A sweep's results folder: rows appended as points finish, read back to resume, summarised.

Job: :class:`ResultsDir` keeps ``sweep.json`` (which sweep this folder is for), ``results.jsonl``
(one JSON row per finished point, appended and flushed as each point finishes — the record that a
rerun reads to skip finished points) and ``results.csv`` (the same rows flat: one column per axis,
``status``, ``error``, ``wall_s`` and one per metric; appended too, rewritten in point order when
the sweep ends). :func:`summarize` gives, per axis and value, the mean, spread (standard
deviation), best and worst of a metric and which point was worst.

Boundary: plain files and numbers; nothing here runs a point.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from chip.errors import ChipctlError, OutputError

__all__ = ["ResultsDir", "summarize", "flat_row", "numeric_metrics"]

_FIXED = ("index", "status", "wall_s")


def flat_row(row: dict, axes: list[str]) -> dict:
    flat = {"index": row["index"]}
    flat.update({axis: row["values"].get(axis, "") for axis in axes})
    flat.update({"status": row["status"], "wall_s": row.get("wall_s", "")})
    flat.update(row.get("metrics", {}))
    flat["error"] = row.get("error", "")
    return flat


class ResultsDir:
    def __init__(self, path: str | Path, spec):
        self.path = Path(path)
        self.spec = spec
        self.axes = spec.axis_names
        self.jsonl = self.path / "results.jsonl"
        self.csv = self.path / "results.csv"
        self._columns: list[str] | None = None

    def open(self) -> dict[str, dict]:
        """Make or reopen the folder; the rows already finished, by point key. A folder of another
        sweep (another netlist text, axes, action or seed) is refused in one line."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {self.path}: cannot make the folder ({exc.strerror or exc})") from None
        meta = self.path / "sweep.json"
        mine = {"spec": self.spec.file, "fingerprint": self.spec.fingerprint(), "axes": self.axes}
        if meta.exists():
            try:
                theirs = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise OutputError(f"{meta}: not a sweep record ({exc})") from None
            if theirs.get("fingerprint") != mine["fingerprint"]:
                raise OutputError(f"--out {self.path} holds results of another sweep ({theirs.get('spec')}, or "
                                  "its netlist changed since); use a new folder")
        else:
            meta.write_text(json.dumps(mine, indent=1) + "\n", encoding="utf-8")
        done: dict[str, dict] = {}
        if self.jsonl.exists():
            text = self.jsonl.read_text(encoding="utf-8")
            complete = text if text.endswith("\n") or not text else text[:text.rfind("\n") + 1]
            if complete != text:  # a row cut by a kill mid-write: drop it, the point runs again
                self.jsonl.write_text(complete, encoding="utf-8")
            for line in complete.splitlines():
                if line.strip():
                    row = json.loads(line)
                    done[row["key"]] = row
        self._rewrite_csv(list(done.values()))
        return done

    def append(self, row: dict, rows_so_far: list[dict]) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        flat = flat_row(row, self.axes)
        if self._columns is None or any(k not in self._columns for k in flat):
            self._rewrite_csv(rows_so_far)
            return
        with open(self.csv, "a", encoding="utf-8", newline="") as fh:
            csv.DictWriter(fh, self._columns).writerow(flat)

    def _rewrite_csv(self, rows: list[dict]) -> None:
        rows = sorted(rows, key=lambda r: r["index"])
        columns = ["index", *self.axes, "status", "wall_s"]
        for row in rows:
            columns += [k for k in row.get("metrics", {}) if k not in columns]
        columns.append("error")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(flat_row(row, self.axes))
        tmp = self.csv.with_suffix(".csv.tmp")
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
        os.replace(tmp, self.csv)
        self._columns = columns

    def finish(self, rows: list[dict]) -> None:
        """The CSV in point order, once every point has a row."""
        self._rewrite_csv(rows)


def numeric_metrics(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for k, v in row.get("metrics", {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in names:
                names.append(k)
    return names


def summarize(rows: list[dict], axes: list[str], metric: str | None, better: str = "higher") -> dict:
    """Per axis and value of it: n, mean, spread (sample standard deviation), min, max and the
    worst point of ``metric`` (lowest when higher is better), over the points that finished ok."""
    ok = [r for r in rows if r["status"] == "ok"]
    names = numeric_metrics(ok)
    if metric is None:
        metric = names[0] if names else None
    elif ok and metric not in names:
        raise ChipctlError(f"metric {metric!r} is not a numeric metric of this sweep; its metrics: "
                           f"{', '.join(names) or 'none'}")
    out = {"metric": metric, "better": better, "points": len(rows), "ok": len(ok),
           "errors": len(rows) - len(ok), "overall": _stats(ok, metric, better), "axes": {}}
    for axis in axes:
        groups: dict[str, list[dict]] = {}
        for row in ok:
            groups.setdefault(json.dumps(row["values"].get(axis)), []).append(row)
        out["axes"][axis] = [{"value": json.loads(v), **_stats(g, metric, better)} for v, g in groups.items()]
    return out


def _stats(rows: list[dict], metric: str | None, better: str) -> dict:
    values = [(r["metrics"][metric], r) for r in rows if metric is not None
              and isinstance(r["metrics"].get(metric), (int, float)) and not isinstance(r["metrics"][metric], bool)]
    if not values:
        return {"n": 0}
    xs = [v for v, _ in values]
    mean = sum(xs) / len(xs)
    spread = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    worst_value, worst_row = (min if better == "higher" else max)(values, key=lambda vr: vr[0])
    return {"n": len(xs), "mean": mean, "spread": spread, "min": min(xs), "max": max(xs),
            "worst": worst_value, "worst_point": worst_row["values"]}
