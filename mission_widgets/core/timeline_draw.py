"""The timeline picture written out: SVG, and HTML with a collapsible block per mission.

:class:`Timeline` is what ``MissionOrchestrator.timeline()`` returns: a snapshot of the
missions' traces that draws itself (``_repr_html_`` / ``_repr_svg_``, so it shows in
JupyterLab, Notebook 7, VS Code, marimo, nbconvert HTML and GitHub's viewer) and saves
itself (``save("x.svg")`` or ``save("x.html")``). No plotting library: the shapes come from
:func:`.timeline_layout.layout` and are written here as plain SVG with inline styles.

**Many missions.** A picture holds at most ``page_size`` missions (50 by default), one row
each plus their steps; ``Timeline.page(n)`` is the n-th page. Pages share one time axis and
one concurrency lane (of all the missions), so they line up. The HTML view says which
missions it shows and how to see the others.
"""

from __future__ import annotations

import html
import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from .cost import format_usd
from .timeline import BACKOFF_COLOUR, OUTCOME_COLOURS, MissionTrace
from .timeline_layout import (
    AXIS_HEIGHT,
    HATCH,
    LANE_HEIGHT,
    Block,
    Frame,
    Layout,
    Shape,
    frame,
    layout,
)

#: Missions per picture (see the module's docstring).
PAGE_SIZE = 50
_PICTURES = itertools.count(1)
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


_ESCAPED: dict[str, str] = {}  # attribute text -> escaped (few distinct: ids, classes, colours)


def _escaped(text: str) -> str:
    found = _ESCAPED.get(text)
    if found is None:
        if len(_ESCAPED) > 50_000:  # a long-lived kernel drawing many stores: stay small
            _ESCAPED.clear()
        found = _ESCAPED[text] = html.escape(text, quote=True)
    return found


def _other(value: Any) -> str:
    return html.escape(str(value), quote=True)


#: An attribute's value as text, by its exact type (floats: positions and times, where repr
#: keeps a time exact); any other type is escaped text.
_ATTR_TEXT: dict[type, Callable[[Any], str]] = {
    float: float.__repr__,
    int: int.__repr__,
    str: _escaped,
}


def _attr(value: Any) -> str:
    return _ATTR_TEXT.get(type(value), _other)(value)


def shape_svg(shape: Shape) -> str:
    parts = []
    for k, v in shape.attrs.items():  # floats and strings first: nearly every attribute
        kind = type(v)
        if kind is float:
            parts.append(f'{k}="{v!r}"')
        elif kind is str:
            parts.append(f'{k}="{_escaped(v)}"')
        elif v is not None:
            parts.append(f'{k}="{_attr(v)}"')
    attrs = " ".join(parts)
    inner = "" if shape.text is None else html.escape(shape.text, quote=False)
    if shape.title:
        inner += f"<title>{html.escape(shape.title, quote=False)}</title>"
    return f"<{shape.tag} {attrs}>{inner}</{shape.tag}>" if inner else f"<{shape.tag} {attrs}/>"


def _defs(prefix: str) -> str:
    return (
        f'<defs><pattern id="{prefix}-{HATCH}" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#fff8e1"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#f9a825" stroke-width="3"/>'
        "</pattern></defs>"
    )


def _svg(width: float, height: float, body: str, prefix: str, cls: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:g}" '
        f'viewBox="0 0 {width} {height:g}" class="mw-timeline {cls}" style="{_FONT}">'
        f"{_defs(prefix)}{body}</svg>"
    )


def _group(shapes: Sequence[Shape], dy: float, cls: str, extra: str = "") -> str:
    inner = "".join(map(shape_svg, shapes))
    return f'<g class="{cls}" transform="translate(0,{dy:g})"{extra}>{inner}</g>'


def svg_of(pic: Layout, prefix: str) -> str:
    """One SVG: axis, lane, then each mission's row and its steps' rows (groups)."""
    parts = [_group(pic.axis, 0, "axis"), _group(pic.lane, AXIS_HEIGHT, "lane")]
    y: float = AXIS_HEIGHT + LANE_HEIGHT
    for block in pic.blocks:
        body = _group(block.body, block.head_height, "steps") if block.body else ""
        parts.append(
            f'<g class="mission-block" data-mission="{_attr(block.mission_id)}" '
            f'transform="translate(0,{y:g})">{_group(block.head, 0, "mission-row")}{body}</g>'
        )
        y += block.head_height + block.body_height + 2
    return _svg(pic.width, y + 4, "".join(parts), prefix)


def _block_html(block: Block, width: float, prefix: str) -> str:
    head = _svg(width, block.head_height, _group(block.head, 0, "mission-row"), prefix, "row")
    if not block.body:
        return f'<div class="mw-tl-mission">{head}</div>'
    body = _svg(width, block.body_height, _group(block.body, 0, "steps"), prefix, "steps")
    return (
        '<details class="mw-tl-mission" open><summary style="list-style:none;cursor:pointer">'
        f"{head}</summary>{body}</details>"
    )


_LEGEND = "".join(
    f'<span style="display:inline-block;width:10px;height:10px;background:{colour};'
    f'margin:0 3px 0 10px"></span>{name}'
    for name, colour in OUTCOME_COLOURS.items()
) + (
    " &nbsp; ⚑ stall flag &nbsp; ✕ cancel &nbsp; ◆ decision &nbsp; ▮ model call"
    f' &nbsp; <span style="border-bottom:2px dashed {BACKOFF_COLOUR}">backoff</span>'
    ' &nbsp; <span style="background:#fff8e1;outline:1px solid #f9a825">waiting for a'
    " person</span>"
)


class Timeline:
    """A picture of missions in time (see the module's docstring). Built by
    ``MissionOrchestrator.timeline()``, or from events with :meth:`from_traces`."""

    def __init__(
        self,
        traces: Sequence[MissionTrace],
        *,
        now: float | None = None,
        steps: bool = True,
        window: int | None = None,
        page_size: int | None = PAGE_SIZE,
        page: int = 1,
        width: float = 960,
        _all: Sequence[MissionTrace] | None = None,
        _shared: dict[Any, Any] | None = None,
    ) -> None:
        if page_size is not None and (not isinstance(page_size, int) or page_size < 1):
            raise ValueError(f"page_size must be a positive int or None, got {page_size!r}")
        self.all_traces = list(_all if _all is not None else traces)
        self.now = time.time() if now is None else now
        self.steps, self.window, self.page_size, self.width = steps, window, page_size, width
        size = page_size or max(len(self.all_traces), 1)
        self.pages = max(1, math.ceil(len(self.all_traces) / size))
        if not isinstance(page, int) or not 1 <= page <= self.pages:
            raise ValueError(f"page must be 1..{self.pages}, got {page!r}")
        self.page_number = page
        self.traces = self.all_traces[(page - 1) * size : page * size]
        self.prefix = f"mwt{next(_PICTURES)}"
        # What the pages share (the frame of all the missions, their total cost), made once
        # for them all: each page made it anew, so drawing n pages cost n times all of it.
        self._shared: dict[Any, Any] = {} if _shared is None else _shared

    def page(self, number: int) -> Timeline:
        """The ``number``-th page (1-based) of this timeline's missions."""
        return Timeline(
            self.all_traces,
            now=self.now,
            steps=self.steps,
            window=self.window,
            page_size=self.page_size,
            page=number,
            width=self.width,
            _all=self.all_traces,
            _shared=self._shared,
        )

    def _frame(self) -> Frame:
        key = ("frame", self.now, self.width, self.window)  # the attributes may be changed
        found: Frame | None = self._shared.get(key)
        if found is None:
            found = self._shared[key] = frame(
                self.all_traces, now=self.now, width=self.width, window=self.window
            )
        return found

    def layout(self) -> Layout:
        return layout(
            self.traces,
            now=self.now,
            steps=self.steps,
            width=self.width,
            window=self.window,
            prefix=self.prefix,
            shared=self._frame(),
        )

    def to_svg(self) -> str:
        """This page as one SVG document (every mission's steps shown)."""
        return svg_of(self.layout(), self.prefix)

    def to_html(self) -> str:
        """This page as HTML: the axis and lane, then a collapsible block per mission."""
        pic = self.layout()
        top = _svg(
            pic.width,
            AXIS_HEIGHT + LANE_HEIGHT,
            _group(pic.axis, 0, "axis") + _group(pic.lane, AXIS_HEIGHT, "lane"),
            self.prefix,
            "top",
        )
        blocks = "".join(_block_html(b, pic.width, self.prefix) for b in pic.blocks)
        return (
            f'<div class="mw-timeline-html" style="{_FONT};font-size:12px">'
            f"<div>{html.escape(self.caption())}</div>{top}{blocks}"
            f'<div style="color:#555;margin-top:4px">{_LEGEND}</div></div>'
        )

    def caption(self) -> str:
        n = len(self.all_traces)
        total = self._shared.get("cost")
        if total is None:
            costs = [t.cost_usd for t in self.all_traces if t.model_calls]
            total = self._shared["cost"] = format_usd(sum(costs)) if costs else "$0"
        text = f"Timeline of {n} mission{'s' if n != 1 else ''}, cost {total}"
        if self.pages > 1:
            size = self.page_size or n
            first = (self.page_number - 1) * size + 1
            text += (
                f"; missions {first}-{first + len(self.traces) - 1} (page {self.page_number} "
                f"of {self.pages}: .page({min(self.page_number + 1, self.pages)}) shows another)"
            )
        return text

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write ``x.svg`` (one SVG) or ``x.html`` (a page of its own); returns the path."""
        target = os.fspath(path)
        kind = os.path.splitext(target)[1].lower()
        if kind == ".svg":
            text = '<?xml version="1.0" encoding="UTF-8"?>\n' + self.to_svg()
        elif kind in (".html", ".htm"):
            text = (
                '<!DOCTYPE html><html><head><meta charset="utf-8"><title>'
                f"{html.escape(self.caption())}</title></head><body>{self.to_html()}"
                "</body></html>"
            )
        else:
            raise ValueError(f"Timeline.save: {target!r} must end in .svg or .html")
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        return target

    def __len__(self) -> int:
        return len(self.all_traces)

    def __repr__(self) -> str:
        return f"<Timeline: {self.caption()}>"
