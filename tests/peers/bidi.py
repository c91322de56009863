"""Where the browser draws the parts of a number, a reference or a date: the rendered order.

The text of a page is in logical order whatever the screen shows, so a test
reads positions instead: each group of a value ("06", "12", ... of
``06 12 34 56 78``; "CP", "7K4M", "9QXT" of a reference) is measured with
``Range.getClientRects`` in the first element under ``selector`` whose text
holds the value. Left to right means each group starts right of the
previous one.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

# Groups of a value: what spaces, hyphens and slashes separate.
MEASURE = """([selector, value]) => {
  const groups = value.split(/[\\s\\-]+/).filter((g) => g);
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    let all = "";
    while (walker.nextNode()) {
      nodes.push([walker.currentNode, all.length]);
      all += walker.currentNode.textContent;
    }
    const at = all.indexOf(value);
    if (at < 0) { continue; }
    const point = (index) => {
      for (let i = nodes.length - 1; i >= 0; i--) {
        if (nodes[i][1] <= index) { return [nodes[i][0], index - nodes[i][1]]; }
      }
      return null;
    };
    const xs = [];
    let offset = at;
    for (const group of groups) {
      const start = all.indexOf(group, offset);
      const [first, firstAt] = point(start);
      const [last, lastAt] = point(start + group.length - 1);
      const range = document.createRange();
      range.setStart(first, firstAt);
      range.setEnd(last, lastAt + 1);
      xs.push(range.getClientRects()[0].left);
      offset = start + group.length;
    }
    return xs;
  }
  return null;
}"""


def group_positions(page: Any, selector: str, value: str) -> list[float]:
    """The x of each group of ``value`` as drawn, in the value's logical order."""
    found = page.evaluate(MEASURE, [selector, value])
    assert found is not None, f"{value!r} is not in {selector}"
    return [float(x) for x in found]


def reads_left_to_right(page: Any, selector: str, value: str) -> bool:
    positions = group_positions(page, selector, value)
    return all(left < right for left, right in pairwise(positions))


UNISOLATED = """([id, text]) => {
  const p = document.createElement("p");
  p.id = id;
  p.textContent = text;
  document.querySelector("main").appendChild(p);
}"""


def add_plain_paragraph(page: Any, element_id: str, text: str) -> None:
    """A paragraph with ``text`` as it was before isolation (to show the measure can fail)."""
    page.evaluate(UNISOLATED, [element_id, text])


EDGES = """([selector, value]) => {
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const at = node.textContent.indexOf(value);
      if (at < 0) { continue; }
      const x = (index) => {
        const range = document.createRange();
        range.setStart(node, index);
        range.setEnd(node, index + 1);
        return range.getClientRects()[0].left;
      };
      return [x(at), x(at + value.length - 1)];
    }
  }
  return null;
}"""


def edge_positions(page: Any, selector: str, value: str) -> tuple[float, float]:
    """The x of the first and of the last character of ``value`` (one text node) as drawn:
    for a run without spaces such as ``+212661234567``, where the ``+`` lands."""
    found = page.evaluate(EDGES, [selector, value])
    assert found is not None, f"{value!r} is not in one text node of {selector}"
    return float(found[0]), float(found[1])
