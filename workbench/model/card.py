"""The model folder's README.md: what a model was trained on, how, and how it scores against the pipeline it
would replace."""

from __future__ import annotations

from typing import Any


def model_card(meta: dict[str, Any]) -> str:
    """The model folder's README.md: what it was trained on, how, and how it scores against the pipeline it would
    replace (the one pre-annotating when it was trained)."""
    info = meta["workbench"]
    trained, base = meta["performance"], info["replaces_scores"]
    rows = "\n".join(
        f"| {label} | {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} | "
        f"{_f(trained['ents_per_type'][label]['p'])} | {_f(trained['ents_per_type'][label]['r'])} | "
        f"{_f(trained['ents_per_type'][label]['f'])} | {b['support']} |"
        for label, b in base["per_label"].items()
    )
    settings = info["settings"]
    how = (f"fine-tuned from `{info['base']}` ({info['base_version']}): its `ner` sourced, with its own tok2vec"
           if info["base"] != "blank" else "trained from scratch (`configs/train.cfg`: tok2vec + ner)")  # fmt: skip
    paragraphs = info["paragraphs"]
    return f"""# {meta['lang']}_{meta['name']} {meta['version']}

A spaCy NER pipeline {how}, with `workbench train {info['release']}` on release **{info['release']}** of the
dataset `{info['dataset']}` (its `manifest.json` sha256 `{info['manifest_sha256']}`).

## Data

| split | paragraphs | use |
|---|---|---|
| train | {paragraphs['train']} | the release's train split, minus dev |
| dev | {paragraphs['dev']} | held out of the train split by article, to choose the best checkpoint |
| test | {paragraphs['test']} | the release's test split: never trained on, nothing chosen by it; scored once |

spaCy trains on its tokenizer's tokens, while the release splits tokens at every span edge ("Ankaras'" ->
Ankara/s/'), so a span that ends inside a tokenizer token can be neither learned nor found:
{info['unreachable_test_spans']} of the test split's spans are such (they count as misses below).

## Scores on the test split (entities kept as pre-annotation keeps them)

Pre-annotating when it was trained, `{info['replaces_version']}`: P {_f(base['precision'])}, R {_f(base['recall'])},
F1 {_f(base['f1'])}. This model: P {_f(trained['ents_p'])}, R {_f(trained['ents_r'])}, F1 {_f(trained['ents_f'])}:
**{"as good or better" if info['better'] else "worse"}**, so `workbench preannotate --model` {"lets it in" if
info['better'] else "refuses it unless forced"}.

| label | current P | current R | current F1 | P | R | F1 | support |
|---|---|---|---|---|---|---|---|
{rows}

## Training

spaCy {meta.get('spacy_version', '')} training loop, `configs/train.cfg` with `[train]` of configs/workbench.toml:
base `{settings['base']}`, max_steps {settings['max_steps']}, max_epochs {settings['max_epochs']}, patience
{settings['patience']}, eval_frequency {settings['eval_frequency']}, dropout {settings['dropout']}, seed
{settings['seed']}, dev_fraction {settings['dev_fraction']}. Trained {info['trained_at']}. The same release, config
and seed give the same model on the same machine.

## Use

`workbench preannotate --model <this folder>` (or `[model] name = "<this folder>"`), then `workbench push`:
new paragraphs and tasks nobody has annotated get this model's predictions, under the model version
`{meta['lang']}_{meta['name']}-{meta['version']}`. In Python: `spacy.load("<this folder>")`.
"""


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"
