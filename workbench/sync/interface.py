"""The labeling project annotators work in: its interface, instructions and settings, generated from the config.

Annotators spend hours here; the interface shows where a paragraph sits in its article, gives every label a
distinct colour and a hotkey (and its guideline as a tooltip), and shows the model's proposals as
pre-annotations to accept, fix or delete, naming the model that made them.

Checked in a real browser (tests/browser) against Label Studio 1.23.2: `<Text>` renders task text as text,
never HTML; the editor draws and stores region offsets in code points, not UTF-16 units.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from workbench.project import Project

# Distinct, readable highlight colours (Label Studio draws the text over them at 30 % opacity).
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#469990",
    "#808000", "#800000", "#000075", "#bfef45", "#fabed4", "#ffd8b1", "#dcbeff", "#aaffc3", "#ffe119",
)  # fmt: skip
# One key per label. Letters Label Studio binds itself in a text task are left out ("u" unselects a region).
HOTKEYS = "1234567890qwertyiopasdfgjklzxcvbnm"

# Label Studio's names for the orders it serves tasks in.
SAMPLING = {"uncertainty": "Uncertainty sampling", "sequential": "Sequential sampling", "uniform": "Uniform sampling"}
# A label's guideline in the guidelines file: a list item "- LABEL: what it covers" (continued on indented lines).
_LABEL_ITEM = re.compile(r"^[-*]\s+\**`?([A-Za-z0-9_-]+)`?\**\s*[:\u2013\u2014-]\s*(.+)$")


def labeling_config(
    labels: Sequence[str],
    *,
    hints: Mapping[str, str] | None = None,
    model_version: str | None = None,
) -> str:
    """The labeling interface: article title, source and place above the paragraph, one coloured hotkeyed label
    each (its guideline as a hover hint), and which model proposed the highlighted spans.

    The paragraph is shown with `<Text>`, which renders text, never HTML: task text is data, not markup.
    """
    hints = hints or {}
    label_tags = "\n".join(
        f"    <Label value={quoteattr(label)} background={quoteattr(PALETTE[i % len(PALETTE)])}"
        + (f" hotkey={quoteattr(HOTKEYS[i])}" if i < len(HOTKEYS) else "")
        + (f" hint={quoteattr(_attribute_text(hints[label]))}" if hints.get(label) else "")
        + "/>"
        for i, label in enumerate(labels)
    )
    proposals = (
        f"  <Header value={quoteattr(_proposals_line(model_version))}"
        ' size="6" style="color: #666; font-weight: normal"/>\n'
        if model_version
        else ""
    )
    return (
        "<View>\n"
        '  <Header value="$title" size="4"/>\n'
        '  <Header value="Source: $doc_id · $position" size="6" style="color: #666"/>\n'
        f"{proposals}"
        # Empty unless the workbench asks for a second look (a "$field" alone shows nothing when it is empty).
        '  <Header value="$second_look" size="6" style="color: #b35900"/>\n'
        # Empty unless `workbench review --push` found a likely mistake here ("needs a second look: ...").
        '  <Header value="$review" size="6" style="color: #b30000"/>\n'
        '  <Labels name="label" toName="text" showInline="true">\n'
        f"{label_tags}\n"
        "  </Labels>\n"
        '  <Text name="text" value="$text" granularity="symbol"/>\n'
        "</View>\n"
    )


def _proposals_line(model_version: str) -> str:
    return f"Pre-annotated by {_attribute_text(model_version)}: accept, fix or delete the highlighted spans"


def _attribute_text(text: str) -> str:
    """One line of plain text for an XML attribute; `$` is dropped so Label Studio reads no task variable."""
    return " ".join(text.replace("$", "").split())


def label_hints(markdown: str, labels: Sequence[str]) -> dict[str, str]:
    """Each label's guideline from the guidelines file (list items "- PERSON: people, ..."), for the hover hint."""
    wanted = set(labels)
    hints: dict[str, str] = {}
    current: str | None = None
    for line in markdown.splitlines():
        match = _LABEL_ITEM.match(line.strip())
        if match and match.group(1) in wanted:
            current = match.group(1)
            hints[current] = match.group(2).strip()
        elif current and line.startswith((" ", "\t")) and line.strip():
            hints[current] += " " + line.strip()
        else:
            current = None
    return hints


def guidelines_html(markdown: str) -> str:
    """The guidelines file as simple, escaped HTML for the project's instructions panel.

    Headings (`#`), paragraphs (lines joined, as Markdown does) and `-` lists; `**bold**` and `` `code` `` inline.
    Everything else is escaped text.
    """
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", markdown) if block.strip()]
    parts = []
    for block in blocks:
        lines = block.splitlines()
        if lines[0].startswith("#"):
            parts.append(f"<h3>{_inline(lines[0].lstrip('#').strip())}</h3>")
            lines = lines[1:]
            if not lines:
                continue
        if lines[0].lstrip().startswith(("- ", "* ")):
            items: list[str] = []
            for line in lines:
                stripped = line.strip()
                if stripped.startswith(("- ", "* ")):
                    items.append(stripped[2:].strip())
                elif items:
                    items[-1] += " " + stripped
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
        else:
            parts.append(f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(parts)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def project_settings(project: Project, model_version: str) -> dict[str, Any]:
    """Every project setting the workbench owns, so a re-run converges on the config."""
    config = project.config
    guidelines_path = project.root / config.labelstudio.guidelines
    guidelines = guidelines_path.read_text(encoding="utf-8") if guidelines_path.exists() else ""
    overlap = config.labelstudio.annotations_per_task
    return {
        "title": config.labelstudio.project_title,
        "description": f"Workbench dataset {config.dataset!r}: correct the pre-annotations of {model_version}.",
        "label_config": labeling_config(
            config.labels,
            hints=label_hints(guidelines, config.labels),
            model_version=model_version if model_version != "none" else None,
        ),
        "expert_instruction": guidelines_html(guidelines),
        "show_instruction": bool(guidelines),
        "show_skip_button": True,
        "enable_empty_annotation": True,
        "show_annotation_history": False,
        "sampling": SAMPLING[config.labelstudio.sampling],
        "maximum_annotations": overlap,
        "overlap_cohort_percentage": 100,
        "model_version": model_version,
        "show_collab_predictions": True,
    }
