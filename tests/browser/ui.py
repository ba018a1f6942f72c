"""What an annotator does in the Label Studio UI, as Playwright steps: log in, open the labeling stream, read the
highlighted spans, delete, relabel, select text with a label, submit.

Every step waits for the UI element it needs or for the change it causes; none sleeps for a fixed time.
Selectors are Label Studio 1.23's (`lsf-` classes, `htx-highlight` spans of the `<Text>` tag).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

TEXT = ".lsf-richtext__container"
HIGHLIGHT = f"{TEXT} .htx-highlight"
LABEL = ".lsf-label"
UI_RETRY_TIMEOUT = 5_000  # ms to see a drag take effect before trying it again
# ms for a step that loads a Label Studio page (the projects list, the data manager, the editor): the first load in
# a fresh browser context fetches and compiles several MB of JavaScript, and the server may still be busy with
# what earlier tests left it (exports, counters); on a loaded 2-core machine that has taken well over the 20 s an
# in-page change is given. Every wait still ends at its condition, never after a fixed time.
PAGE_LOAD = 120_000

# The screen rectangle of the n-th occurrence of `needle` in the paragraph's rendered text (across highlight spans).
_NEEDLE_BOX = """([needle, occurrence]) => {
  const root = document.querySelector('.lsf-richtext__container');
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let full = '';
  const nodes = [];
  while (walker.nextNode()) { nodes.push([walker.currentNode, full.length]); full += walker.currentNode.data; }
  let at = -1;
  for (let k = 0; k <= occurrence; k++) { at = full.indexOf(needle, at + 1); if (at < 0) return null; }
  const locate = (i) => {
    for (let k = nodes.length - 1; k >= 0; k--) if (nodes[k][1] <= i) return [nodes[k][0], i - nodes[k][1]];
  };
  const [startNode, startOffset] = locate(at);
  const [endNode, endOffset] = locate(at + needle.length - 1);
  const range = document.createRange();
  range.setStart(startNode, startOffset);
  range.setEnd(endNode, endOffset + 1);
  const rects = range.getClientRects();
  const first = rects[0], last = rects[rects.length - 1];
  return {x0: first.left + 1, y0: first.top + first.height / 2, x1: last.right - 1, y1: last.top + last.height / 2,
          text: range.toString()};
}"""

# The regions drawn over the paragraph: one entry per region (a region may be drawn as several spans).
_REGIONS = """() => {
  const found = new Map();
  for (const el of document.querySelectorAll('.lsf-richtext__container .htx-highlight')) {
    const cls = [...el.classList].find(c => /^htx-highlight-.+/.test(c));
    const entry = found.get(cls) || {text: '', label: el.dataset.label || ''};
    entry.text += el.textContent;
    found.set(cls, entry);
  }
  return [...found.values()].map(e => [e.text, e.label.replace(/^\\d+:/, '')]);
}"""

# Two lists of [text, label] pairs hold the same pairs, in any order.
_SAME_REGIONS = """(a, b) => {
  const canonical = (pairs) => JSON.stringify(pairs.map(pair => JSON.stringify(pair)).sort());
  return canonical(a) === canonical(b);
}"""


@dataclass(frozen=True)
class Shown:
    """What the labeling view shows above the paragraph (its header lines), and the paragraph itself."""

    headers: tuple[str, ...]
    text: str


def login(page: Page, base_url: str, email: str, password: str) -> None:
    """Log in through the login form, as a person does."""
    page.goto(f"{base_url}/user/login/", timeout=PAGE_LOAD)
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=PAGE_LOAD)


def open_stream(page: Page, project_title: str) -> str:
    """From the projects list: open the project and press "Label All Tasks"; returns the instructions shown."""
    page.get_by_text(project_title, exact=True).first.click(timeout=PAGE_LOAD)
    page.get_by_role("button", name="Label All Tasks").click(timeout=PAGE_LOAD)
    dialog = page.locator(".lsf-modal-ls__content").filter(has_text="Labeling Instructions")
    dialog.wait_for(timeout=PAGE_LOAD)  # the editor's first load
    instructions = dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.locator(TEXT).wait_for(timeout=PAGE_LOAD)
    return instructions


def shown(page: Page) -> Shown:
    """The title and source/position headers and the paragraph text of the task on screen."""
    headers = page.locator(".lsf-main-view__annotation").locator("h1, h2, h3, h4, h5, h6")
    return Shown(headers=tuple(headers.all_inner_texts()), text=page.locator(TEXT).inner_text())


def regions(page: Page) -> list[tuple[str, str]]:
    """(highlighted text, label) of every region drawn over the paragraph, in document order."""
    return [tuple(pair) for pair in page.evaluate(_REGIONS)]


def wait_for_regions(page: Page, expected: Iterable[tuple[str, str]], timeout: float = 10_000) -> list[tuple[str, str]]:
    """The drawn regions once they are exactly `expected` (in any order); after `timeout` ms, whatever is drawn,
    for the caller's assertion to show the difference."""
    want = [list(pair) for pair in expected]
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(f"([want]) => ({_SAME_REGIONS})(({_REGIONS})(), want)", arg=[want], timeout=timeout)
    return regions(page)


def _wait_for_count(page: Page, count: int, timeout: float | None = None) -> None:
    page.wait_for_function(f"([n]) => ({_REGIONS})().length === n", arg=[count], timeout=timeout)


def labels(page: Page) -> list[tuple[str, str, str]]:
    """(name, hotkey, colour) of every label button above the paragraph."""
    found = []
    for label in page.locator(f".lsf-main-view__annotation {LABEL}").all():
        style = label.get_attribute("style") or ""
        colour = re.search(r"--color:\s*([^;]+)", style)
        found.append(
            (
                label.locator(".lsf-label__text").inner_text(),
                label.locator(".lsf-label__hotkey").inner_text(),
                colour.group(1).strip() if colour else "",
            )
        )
    return found


def label_hint(page: Page, label: str) -> str:
    """The tooltip shown while hovering a label."""
    page.locator(LABEL, has_text=label).first.hover()
    tooltip = page.locator("[class*=tooltip][class*=visible]")
    tooltip.first.wait_for()
    text = tooltip.first.inner_text()
    page.mouse.move(0, 0)
    return text


def select_region(page: Page, text: str) -> None:
    """Click a highlighted region to select it (it turns solid; its details open on the right)."""
    page.locator(HIGHLIGHT, has_text=text).first.click()
    expect(page.locator(f"{HIGHLIGHT}.__active", has_text=text).first).to_be_visible()


def unselect(page: Page) -> None:
    """Press "u", Label Studio's key to unselect the selected region."""
    page.keyboard.press("u")
    expect(page.locator(f"{HIGHLIGHT}.__active")).to_have_count(0)


def delete_region(page: Page, text: str) -> None:
    """Select a region and press Backspace, Label Studio's delete key."""
    before = len(regions(page))
    select_region(page, text)
    page.keyboard.press("Backspace")
    _wait_for_count(page, before - 1)


def relabel_region(page: Page, text: str, label: str, hotkey: str) -> None:
    """Select a region and press another label's hotkey: the region takes that label."""
    select_region(page, text)
    page.keyboard.press(hotkey)
    _wait_for_region(page, text, label)
    unselect(page)  # so the next key press does not relabel it again


def _wait_for_region(page: Page, text: str, label: str, timeout: float | None = None) -> None:
    page.wait_for_function(
        f"([text, label]) => ({_REGIONS})().some(([t, l]) => t === text && l === label)",
        arg=[text, label],
        timeout=timeout,
    )


def add_region(page: Page, needle: str, label: str, hotkey: str, occurrence: int = 0, attempts: int = 3) -> None:
    """Press a label's hotkey, then drag the mouse over `needle` in the paragraph: a new region with that label.

    On a loaded machine the editor can still be re-rendering when the drag starts, and then ignores it, as it
    would a person's too-early drag; like that person, try again (only while no region was added). Success is the
    new region itself on screen, not a count: a re-render can briefly draw an old region twice.
    """
    before = len(regions(page))
    for attempt in range(attempts):
        if not page.locator(f"{LABEL}.lsf-label_selected", has_text=label).count():
            page.keyboard.press(hotkey)
        expect(page.locator(f"{LABEL}.lsf-label_selected", has_text=label).first).to_be_visible()
        box = page.evaluate(_NEEDLE_BOX, [needle, occurrence])
        assert box and box["text"] == needle, f"{needle!r} is not in the paragraph on screen"
        page.mouse.move(box["x0"], box["y0"])
        page.mouse.down()
        page.mouse.move(box["x1"], box["y1"], steps=8)
        page.mouse.up()
        try:
            _wait_for_region(page, needle, label, timeout=UI_RETRY_TIMEOUT if attempt + 1 < attempts else None)
            _wait_for_count(page, before + 1)  # and nothing else was added
            return
        except PlaywrightTimeoutError:
            assert len(regions(page)) == before, "a drag added a region but not the one expected"


def submit(page: Page) -> None:
    """Press Submit and wait until the server has the annotation (the stream then moves on)."""
    with page.expect_response(lambda r: r.request.method == "POST" and "/annotations" in r.url and r.status == 201):
        page.get_by_test_id("bottombar-submit-button").click()


def open_task(page: Page, base_url: str, project_id: int, task_id: int) -> None:
    """Open one task from the data manager (the task list), as a person does by clicking its row."""
    page.goto(f"{base_url}/projects/{project_id}/data?task={task_id}", timeout=PAGE_LOAD)
    page.locator(TEXT).wait_for(timeout=PAGE_LOAD)


def dismiss_messages(page: Page) -> None:
    """Close the "Annotation saved" messages, so a screenshot shows the labeling view alone."""
    for message in page.locator("[class*=toast_]").all():
        if message.is_visible():
            message.locator("button").first.click()
            message.wait_for(state="hidden")
