"""The orderings bench's reading of its curves: means over seeds, and the labels uncertainty needs to reach random's
final F1 (interpolated between steps)."""

from __future__ import annotations

import pytest

from bench.orderings import labels_to_reach, summary


def _run(f1s: list[float], k: int = 100) -> list[dict[str, float]]:
    return [{"labels": k * (i + 1), "entities": 10 * (i + 1), "f1": f1} for i, f1 in enumerate(f1s)]


def test_the_labels_to_reach_a_target_are_interpolated_between_steps() -> None:
    curve = [{"labels": 100, "f1_mean": 0.2}, {"labels": 200, "f1_mean": 0.4}, {"labels": 300, "f1_mean": 0.5}]
    assert labels_to_reach(curve, 0.3) == pytest.approx(150.0)
    assert labels_to_reach(curve, 0.4) == 200.0
    assert labels_to_reach(curve, 0.1) == pytest.approx(50.0)  # from 0 labels at F1 0
    assert labels_to_reach(curve, 0.6) is None
    assert labels_to_reach(curve, 0.3, start=0.25) == pytest.approx(150.0)
    assert labels_to_reach(curve, 0.1, start=0.25) == 0.0  # the base pipeline is there already
    assert labels_to_reach(curve, 0.2, start=0.1) == 100.0


def test_the_summary_averages_seeds_and_compares_uncertainty_with_random() -> None:
    curves = {
        "uncertainty": {1: _run([0.3, 0.5]), 2: _run([0.3, 0.3])},
        "random": {1: _run([0.2, 0.4]), 2: _run([0.2, 0.4])},
        "sequential": {1: _run([0.1, 0.2]), 2: _run([0.1, 0.2])},
    }
    out = summary(curves)
    assert out["mean_curves"]["uncertainty"][1]["f1_mean"] == pytest.approx(0.4)
    assert out["mean_curves"]["uncertainty"][1]["f1_sd"] == pytest.approx(0.1)
    reach = out["uncertainty_vs_random"]
    assert (reach["random_final_f1"], reach["random_final_labels"]) == (pytest.approx(0.4), 200)
    assert reach["uncertainty_labels_to_reach"] == pytest.approx(200.0)  # 0.3 at 100, 0.4 at 200
    assert reach["share_of_random_labels"] == pytest.approx(1.0)
