"""The loop bench's plot: corrections per task and held-out F1 round by round (the retrained model against the
stock pipeline on the same tweets), and F1 against labels used for each ordering (mean over seeds, +- one SD)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def draw(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
    rounds = result.get("rounds") or []
    numbers = [r["round"] for r in rounds]
    left.plot(numbers, [r["corrections"]["per_task"] for r in rounds], "o-", label="served (model in use)")
    left.plot(numbers, [r["stock_same_tweets"]["corrections"]["per_task"] for r in rounds], "s--",
              label="stock pipeline, same tweets")  # fmt: skip
    left.set(xlabel="round", ylabel="corrections per task", title="Corrections the annotator made")
    left.set_xticks(numbers)
    left.legend()
    trained = [r for r in rounds if "trained" in r]
    middle.plot([r["round"] for r in trained], [r["trained"]["held_out"]["f1"] for r in trained], "o-",
                label="model trained after the round")  # fmt: skip
    stock = (result.get("held_out") or {}).get("stock_through_label_map", {}).get("f1")
    if stock is not None:
        middle.axhline(stock, linestyle="--", color="grey", label="stock pipeline through the map")
    for r in trained:
        decision = (r.get("guard") or {}).get("decision")
        if decision:
            middle.annotate(decision, (r["round"], r["trained"]["held_out"]["f1"]), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize=8)  # fmt: skip
    middle.set(xlabel="round", ylabel="F1 on held-out articles", title="Held-out F1 of each round's model")
    middle.set_xticks(numbers)
    middle.legend()
    curves = (result.get("orderings") or {}).get("mean_curves") or {}
    for name, points in curves.items():
        labels = [p["labels"] for p in points]
        means = [p["f1_mean"] for p in points]
        sds = [p["f1_sd"] for p in points]
        right.plot(labels, means, "o-", label=name)
        right.fill_between(labels, [m - s for m, s in zip(means, sds, strict=True)],
                           [m + s for m, s in zip(means, sds, strict=True)], alpha=0.15)  # fmt: skip
    right.set(xlabel="tweets labelled", ylabel="F1 on held-out articles", title="Orderings (mean of seeds, +-1 SD)")
    right.legend()
    fig.suptitle("WNUT-16 through the workbench's loop (bench/results/loop-wnut16.json)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
