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
    found = result.get("orderings") or {}
    base = found.get("base_f1")  # the stock pipeline every run fine-tunes: the curves' point at 0 labels
    start = [{"labels": 0, "f1_mean": base, "f1_sd": 0.0}] if base is not None else []
    for name, points in (found.get("mean_curves") or {}).items():
        labels = [p["labels"] for p in start + points]
        means = [p["f1_mean"] for p in start + points]
        sds = [p["f1_sd"] for p in start + points]
        right.plot(labels, means, "o-", label=name)
        right.fill_between(labels, [m - s for m, s in zip(means, sds, strict=True)],
                           [m + s for m, s in zip(means, sds, strict=True)], alpha=0.15)  # fmt: skip
    right.set(xlabel="tweets (paragraphs) labelled", ylabel="F1 on held-out articles",
              title="Orderings (mean of seeds, +-1 SD)")  # fmt: skip
    right.legend()
    corpus = "the seed reference" if result.get("corpus_name") == "reference" else "WNUT-16"
    fig.suptitle(f"{corpus} through the workbench's loop ({path.with_suffix('.json').name})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # draw again from a results file: python -m bench.loop_plot bench/results/loop-wnut16.json
    import json
    import sys

    source = Path(sys.argv[1])
    draw(json.loads(source.read_text(encoding="utf-8")), source.with_suffix(".png"))
