"""The labeling project annotators work in: its interface, instructions and settings, generated from the config.

Annotators spend hours here; the interface shows where a paragraph sits in its article, gives every label a
distinct colour and a hotkey, and shows the model's proposals as pre-annotations to accept, fix or delete.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from workbench.project import Project

# Distinct, readable highlight colours (Label Studio draws the text over them).
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990",
    "#808000", "#800000", "#000075", "#bfef45", "#fabed4", "#ffd8b1", "#dcbeff", "#aaffc3", "#ffe119",
)  # fmt: skip
HOTKEYS = "1234567890qwertyuiop"


def labeling_config(labels: Sequence[str]) -> str:
    """The labeling interface: article title and place above the paragraph, one coloured hotkeyed label each.

    The paragraph is shown with `<Text>`, which renders text, never HTML: task text is data, not markup.
    """
    label_tags = "\n".join(
        f"    <Label value={quoteattr(label)} background={quoteattr(PALETTE[i % len(PALETTE)])}"
        + (f" hotkey={quoteattr(HOTKEYS[i])}" if i < len(HOTKEYS) else "")
        + "/>"
        for i, label in enumerate(labels)
    )
    return (
        "<View>\n"
        '  <Header value="$title" size="4"/>\n'
        '  <Header value="$position" size="6" style="color: #666"/>\n'
        '  <Labels name="label" toName="text" showInline="true">\n'
        f"{label_tags}\n"
        "  </Labels>\n"
        '  <Text name="text" value="$text" granularity="symbol"/>\n'
        "</View>\n"
    )


def guidelines_html(markdown: str) -> str:
    """The guidelines file as simple, escaped HTML for the project's instructions panel."""
    blocks = [block.strip() for block in markdown.split("\n\n") if block.strip()]
    parts = []
    for block in blocks:
        if block.startswith("#"):
            parts.append(f"<h3>{html.escape(block.lstrip('#').strip())}</h3>")
        else:
            lines = "<br/>".join(html.escape(line.strip()) for line in block.splitlines())
            parts.append(f"<p>{lines}</p>")
    return "\n".join(parts)


def project_settings(project: Project, model_version: str) -> dict[str, Any]:
    """Every project setting the workbench owns, so a re-run converges on the config."""
    config = project.config
    guidelines_path = project.root / config.labelstudio.guidelines
    guidelines = guidelines_path.read_text(encoding="utf-8") if guidelines_path.exists() else ""
    overlap = config.labelstudio.annotations_per_task
    return {
        "title": config.labelstudio.project_title,
        "description": f"Workbench dataset {config.dataset!r}: correct the pre-annotations of {model_version}.",
        "label_config": labeling_config(config.labels),
        "expert_instruction": guidelines_html(guidelines),
        "show_instruction": bool(guidelines),
        "show_skip_button": True,
        "enable_empty_annotation": True,
        "show_annotation_history": False,
        "sampling": "Sequential sampling",
        "maximum_annotations": overlap,
        "overlap_cohort_percentage": 100,
        "model_version": model_version,
        "show_collab_predictions": True,
    }
