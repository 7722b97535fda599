"""CI gates on a benchmark result: floors on the 50:50 sets, a limit on quantisation damage and
one on the invariance probes' flip rate.

A gate never stops the report from being written; `python -m benchmark` writes it first, then
prints one `gate failed:` line per violation and exits 3, so CI can tell a regression (3) from a
usage mistake or a bad input (1, 2) and still publish the report that explains it.
"""
from __future__ import annotations

from benchmark.invariance import max_flip_failures
from benchmark.tables import TEST_SETS

FLOOR_METRICS = ("accuracy", "balanced_accuracy", "auc")


def parse_floors(items: list[str]) -> dict[str, float]:
    """--fail_below items "metric=value" → {metric: value}; ValueError on anything else."""
    floors = {}
    for item in items:
        metric, sep, value = item.partition("=")
        metric = metric.strip()
        if not sep or metric not in FLOOR_METRICS:
            raise ValueError(f"--fail_below {item!r}: write metric=value with metric one of {', '.join(FLOOR_METRICS)}")
        try:
            floors[metric] = float(value)
        except ValueError:
            raise ValueError(f"--fail_below {item!r}: {value!r} is not a number") from None
    return floors


def gate_failures(result: dict, floors: dict[str, float], max_quant_drop: float | None,
                  max_flip: float | None = None) -> list[str]:
    """One message per violated gate: a model below a floor on a 50:50 set, a quantised model
    losing more than `max_quant_drop` accuracy or AUC points against its float32, or a probe
    flipping more than `max_flip` of a test set's decisions."""
    failures = []
    balanced = [ts.name for ts in TEST_SETS if ts.real_sources]
    for name, r in result["models"].items():
        for set_name in balanced:
            detail = r["sets"].get(set_name, {}).get("detail")
            for metric, floor in floors.items():
                if detail and detail[metric] < floor:
                    failures.append(f"{name} on {set_name}: {metric} {detail[metric]:.4f} is below {floor}")
    if max_quant_drop is not None:
        for q in result["quantization"]:
            for label, key in (("accuracy", "delta_acc_points"), ("AUC", "delta_auc_points")):
                if q[key] is not None and -q[key] > max_quant_drop:
                    failures.append(f"{q['model']} on {q['set']}: {label} {q[key]:+.2f} points vs {q['reference']} "
                                    f"(allowed drop: {max_quant_drop} points)")
    if max_flip is not None:
        failures += max_flip_failures(result.get("invariance", []), max_flip)
    return failures
