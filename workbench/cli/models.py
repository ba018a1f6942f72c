"""Models: `train` on a release, `models` to list them."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench import workflow
from workbench.cli.apps import app
from workbench.cli.output import current_project, err, guarded, new_table, out, print_json, progress_bar, score, state


@app.command()
def train(
    version: Annotated[str, typer.Argument(help="The release to train on, e.g. 0.2.0.")],
    force: Annotated[bool, typer.Option(help="Replace a model already trained on this release.")] = False,
):
    """Train a spaCy NER pipeline on a release's train split and score it on its test split.

    The model goes to models/<dataset>/<VERSION>/ with a model card. Example: workbench train 0.2.0
    """
    project = current_project()
    steps = project.config.train.max_steps
    with progress_bar("training (dev F1 at each evaluation)", total=steps) as progress:
        last = [0]

        def on_evaluation(step: int, score: float) -> None:
            if progress:
                progress(step - last[0])
            last[0] = step

        result = guarded(lambda: workflow.do_train(project, version, force=force, on_evaluation=on_evaluation))
    current = result.current_version
    table = new_table("label", f"{current} F1", "trained F1", "support", title=f"test split of release {version}")
    for label, now in result.current_scores.per_label.items():
        trained = result.trained.per_label[label]
        table.add_row(label, score(now["f1"]), score(trained["f1"]), str(now["support"]))
    table.add_row("all", score(result.current_scores.f1), score(result.trained.f1), "")
    out.print(table)
    out.print(
        f"{result.model_version} ({result.base}) -> {result.path}; trained on {result.paragraphs['train']} "
        f"paragraphs (dev {result.paragraphs['dev']}), scored on {result.paragraphs['test']} it never saw."
    )
    if result.better:
        out.print(f"As good as or better than {current}, which pre-annotates now ({result.current_scores.f1:.3f} -> "
                  f"{result.trained.f1:.3f}). Pre-annotate with it: workbench preannotate --model {result.path}, "
                  "then workbench push.")  # fmt: skip
    else:
        out.print(f"Worse than {current}, which pre-annotates now ({result.current_scores.f1:.3f} -> "
                  f"{result.trained.f1:.3f}): `workbench preannotate --model` refuses it unless --force. "
                  f"`workbench train-curve {version}` says whether more annotation would still help.")  # fmt: skip


@app.command("train-curve")
def train_curve(version: Annotated[str, typer.Argument(help="The release, e.g. 0.2.0.")]):
    """Should we annotate more? Trains on 25/50/75/100% of a release's train split (by article) and prints the
    test F1 of each, per label: if the last quarter still helped, more data should too.

    Example: workbench train-curve 0.2.0
    """
    project = current_project()

    def on_share(share: float) -> None:
        if not state.quiet:
            err.print(f"training on {share:.0%} of the train split")

    curve = guarded(lambda: workflow.do_train_curve(project, version, on_share=on_share))
    labels = list(curve.points[-1].scores.per_label)
    table = new_table("share", "articles", "paragraphs", "F1", *labels, title=f"test split of release {version}")
    for point in curve.points:
        per_label = [score(point.scores.per_label[label]["f1"]) for label in labels]
        table.add_row(f"{point.share:.0%}", str(point.articles), str(point.paragraphs), score(point.scores.f1),
                      *per_label)  # fmt: skip
    out.print(table)
    out.print(curve.verdict())


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """List the trained models: release, base, test F1 against the pipeline each would replace, which is in use.

    Example: workbench models"""
    project = current_project()
    found = guarded(lambda: workflow.models(project))
    if as_json:
        print_json(found)
        return
    if not found:
        out.print(f"no model yet in {project.models_dir} (train one with `workbench train VERSION`)")
        return
    table = new_table("model version", "release", "base", "test F1", "replaces", "its F1", "verdict", "in use",
                      "size", "trained")  # fmt: skip
    for entry in found:
        if entry.get("problem"):
            table.add_row(entry["path"], "unreadable", *["-"] * 8)
            continue
        verdict = {True: "better", False: "worse"}.get(entry["better"], "-")
        table.add_row(
            entry["model_version"], entry["release"], entry["base"], score(entry["f1"]), entry["replaces"],
            score(entry["replaces_f1"]), verdict, "yes" if entry["deployed"] else "",
            f"{entry['size_bytes'] / 2**20:.1f} MB", entry["trained_at"],
        )  # fmt: skip
    out.print(table)
