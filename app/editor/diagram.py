"""A picture of a flow for the editor: steps as boxes, where each step leads as arrows, as one SVG.

Pure: it takes a flow as loaded from YAML (possibly a half-edited, broken draft) and returns markup.
Nothing here raises on broken data: what cannot be drawn is left out, and what is wrong is marked.
Every piece of flow text is typed by staff, so all of it is escaped.

Layout: layer = shortest distance from the start step, one row per layer, the nodes of a row in
file order; steps no one can reach get a last row of their own. Arrows leave a box at the bottom
and enter the next box at the top. An arrow that goes back up (or within its row) runs down the
right-hand side; an arrow that goes down more than one row and would cut through a box runs down
the left-hand side. Both turn in the gaps between rows, so they never cross a box.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from app.engine.nodes import REGISTRY

STEP_W = 270.0
STEP_H = 64.0
LINK_H = 30.0
H_GAP = 36.0
MIN_ROW_GAP = 76.0
LANE_STEP = 5.0  # vertical distance between the turns of side arrows sharing a gap
LANE_GAP = 10.0  # horizontal distance between side arrows
LABEL_ZONE = 34.0  # room in each gap for the labels of straight-down arrows
MARGIN = 12.0
EXCERPT_CHARS = 38
LABEL_CHARS = 20
ID_CHARS = 28
LINK_CHARS = 26
# Rough widths of one character, to size labels and boxes without measuring fonts.
CHAR_W_LABEL = 6.2
CHAR_W_LINK = 7.0

# Fields that lead somewhere, in the order the engine lists them, with the label of their arrow.
_TARGET_FIELDS = (("yes", "yes"), ("no", "no"), ("otherwise", "otherwise"), ("goto", ""), ("next", ""))
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class _Box:
    """One box: a step, another flow, or a step that does not exist."""

    key: str
    kind: str  # "step", "flow" or "missing"
    name: str
    w: float
    h: float
    row: int = 0
    x: float = 0.0
    y: float = 0.0
    out_edges: list[_Edge] = field(default_factory=list)
    in_edges: list[_Edge] = field(default_factory=list)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class _Edge:
    """One arrow from a step to where it leads (``target`` as written in the flow)."""

    source: str
    target: str
    label: str
    style: str  # "" or "skip" or "answer-link"
    box: str = ""
    route: str = "direct"  # "direct", "left" or "right"
    lane: int = 0
    start: tuple[float, float] = (0.0, 0.0)
    end: tuple[float, float] = (0.0, 0.0)


def _clean(value: Any) -> str:
    """Text on one line, without characters XML cannot hold."""
    text = value if isinstance(value, str) else str(value)
    return " ".join(_INVALID_XML.sub("", text).split())


def _short(value: Any, limit: int) -> str:
    """The text cut to ``limit`` characters with an ellipsis."""
    text = _clean(value)
    return text if len(text) <= limit else text[:limit].rstrip() + "\u2026"


def _esc(value: Any) -> str:
    """XML-escaped single-line text."""
    return str(escape(_clean(value)))


def _num(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _is_target(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _case_label(case: Mapping[str, Any]) -> str:
    """A branch case in a few words."""
    if "if_set" in case:
        return f"if {_clean(case['if_set'])}"
    if "if_answered" in case:
        return f"if {_clean(case['if_answered'])} answered"
    wanted = case.get("if_answer")
    if isinstance(wanted, Mapping):
        return f"if {_clean(wanted.get('key', '?'))} = {_clean(wanted.get('equals', '?'))}"
    return "if ..."


def _edges_of(node_id: str, node: Any) -> list[_Edge]:
    """Where a step leads, in the engine's order (``NodeKind.targets``), labelled for the picture."""
    if not isinstance(node, Mapping):
        return []
    kind = node.get("kind")
    found: list[_Edge] = []
    choices = node.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, Mapping) and _is_target(choice.get("goto")):
                found.append(_Edge(node_id, choice["goto"], _short(choice.get("label", ""), LABEL_CHARS), ""))
    items = node.get("items")
    if kind == "summary" and isinstance(items, list):
        # The way back to each answer (through "change an answer"): drawn faint, not a main path.
        for item in items:
            if isinstance(item, Mapping) and _is_target(item.get("node")):
                found.append(_Edge(node_id, item["node"], "", "answer-link"))
    cases = node.get("cases")
    if isinstance(cases, list):
        for case in cases:
            if isinstance(case, Mapping) and _is_target(case.get("goto")):
                found.append(_Edge(node_id, case["goto"], _short(_case_label(case), LABEL_CHARS), ""))
    for name, label in _TARGET_FIELDS:
        if _is_target(node.get(name)):
            found.append(_Edge(node_id, node[name], label, ""))
    if kind == "actions" and _is_target(node.get("none")):
        found.append(_Edge(node_id, node["none"], "no actions", ""))
    if kind == "change" and _is_target(node.get("summary")):
        found.append(_Edge(node_id, node["summary"], "", ""))
    if _is_target(node.get("skip")):
        found.append(_Edge(node_id, node["skip"], "skip", "skip"))
    return found


def _excerpt(node: Any) -> str:
    """A short line saying what the step shows or does."""
    if not isinstance(node, Mapping):
        return ""
    text = node.get("text")
    if isinstance(text, str) and text.strip():
        return _short(text, EXCERPT_CHARS)
    if node.get("kind") == "record" and node.get("effect"):
        return _short(f"records: {_clean(node['effect']).replace('_', ' ')}", EXCERPT_CHARS)
    return ""


def _kind_words(node: Any) -> str:
    if not isinstance(node, Mapping):
        return "not a step"
    kind = node.get("kind")
    if not isinstance(kind, str) or not kind:
        return "no kind"
    return kind if kind in REGISTRY else f"unknown kind \u201c{_short(kind, 20)}\u201d"


def _is_broken(node: Any) -> bool:
    if not isinstance(node, Mapping):
        return True
    return node.get("kind") not in REGISTRY


def _layers(start: str, order: list[str], main: dict[str, list[str]], extra: dict[str, list[str]]) -> dict:
    """Shortest distance from the start over the main arrows; steps reached only by a summary's way
    back to an answer are then placed one row below the summary, and the journey carries on from them."""
    layer: dict[str, int] = {}
    queue: deque[str] = deque()
    if start in main:
        layer[start] = 0
        queue.append(start)
    while True:
        while queue:
            current = queue.popleft()
            for target in main[current]:
                if target not in layer:
                    layer[target] = layer[current] + 1
                    queue.append(target)
        for source in sorted((s for s in order if s in layer), key=lambda s: layer[s]):
            for target in extra[source]:
                if target not in layer:
                    layer[target] = layer[source] + 1
                    queue.append(target)
        if not queue:
            return layer


def _bezier(points: Sequence[tuple[float, float]], t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _curve(start: tuple[float, float], end: tuple[float, float]) -> list[tuple[float, float]]:
    """The control points of a gentle S from the bottom of one box to the top of another."""
    (sx, sy), (tx, ty) = start, end
    bend = max(18.0, (ty - sy) / 2)
    return [(sx, sy), (sx, sy + bend), (tx, ty - bend), (tx, ty)]


def _at_y(points: Sequence[tuple[float, float]], y: float) -> tuple[float, float]:
    """The point of a downward curve at height ``y`` (its height only grows along it)."""
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        if _bezier(points, middle)[1] < y:
            low = middle
        else:
            high = middle
    return _bezier(points, (low + high) / 2)


def _crosses(points: Sequence[tuple[float, float]], boxes: list[_Box]) -> bool:
    """Whether the curve passes through any of the boxes (with a little room around them)."""
    for step in range(1, 40):
        x, y = _bezier(points, step / 40)
        for box in boxes:
            if box.x - 6 <= x <= box.x + box.w + 6 and box.y - 4 <= y <= box.bottom + 4:
                return True
    return False


def _rounded(points: list[tuple[float, float]], radius: float = 6.0) -> str:
    """An SVG path through the points with rounded corners."""
    path = [f"M{_num(points[0][0])},{_num(points[0][1])}"]
    for before, corner, after in zip(points, points[1:], points[2:], strict=False):
        into = (corner[0] - before[0], corner[1] - before[1])
        out = (after[0] - corner[0], after[1] - corner[1])
        len_in, len_out = abs(into[0]) + abs(into[1]), abs(out[0]) + abs(out[1])
        if not len_in or not len_out:
            continue
        r = min(radius, len_in / 2, len_out / 2)
        a = (corner[0] - into[0] / len_in * r, corner[1] - into[1] / len_in * r)
        b = (corner[0] + out[0] / len_out * r, corner[1] + out[1] / len_out * r)
        path.append(
            f"L{_num(a[0])},{_num(a[1])}Q{_num(corner[0])},{_num(corner[1])} {_num(b[0])},{_num(b[1])}"
        )
    path.append(f"L{_num(points[-1][0])},{_num(points[-1][1])}")
    return "".join(path)


def _css(p: str) -> str:
    """The diagram's styles, scoped to this diagram (a <style> inside inline SVG applies page-wide)."""
    s = f"#{p}"
    return (
        f"{s} text{{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;fill:#1b1b1b}}"
        f"{s} .step rect{{fill:#fff;stroke:#333;stroke-width:1.5px}}"
        f"{s} .step.start rect{{stroke:#5b9bd5;stroke-width:3px}}"
        f"{s} .step.unreachable rect{{stroke-dasharray:6 4}}"
        f"{s} .step.problem rect,{s} .step.broken rect{{stroke:#b00020;stroke-width:3px}}"
        f"{s} .step .id{{font-weight:bold;font-size:13px}}"
        f"{s} .step .excerpt{{font-size:11px}}"
        f"{s} .step .kind{{font-size:11px;fill:#555}}"
        f"{s} .step.problem .kind,{s} .step.broken .kind{{fill:#b00020}}"
        f"{s} .flow-link rect{{fill:#f4f4f4;stroke:#666;stroke-width:1.5px}}"
        f"{s} .missing-step rect{{fill:#fff;stroke:#b00020;stroke-width:2px}}"
        f"{s} .flow-link text,{s} .missing-step text{{font-size:12px}}"
        f"{s} .missing-step text{{fill:#b00020}}"
        f"{s} .edge path{{fill:none;stroke:#444;stroke-width:1.5px}}"
        f"{s} .edge.missing path{{stroke:#b00020;stroke-dasharray:5 3}}"
        f"{s} .edge.answer-link path{{stroke:#aaa;stroke-width:1px;stroke-dasharray:2 3}}"
        f"{s} .edge text{{font-size:11px;fill:#333;paint-order:stroke;stroke:#fff;stroke-width:3px;"
        "stroke-linejoin:round}"
        f"{s} .arrowhead{{fill:#444}}{s} .arrowhead.missing{{fill:#b00020}}{s} .arrowhead.faint{{fill:#aaa}}"
    )


def _marker(p: str, name: str, css_class: str) -> str:
    return (
        f'<marker id="{p}-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9"'
        f' markerUnits="userSpaceOnUse" orient="auto">'
        f'<path class="{css_class}" d="M0,0L10,5L0,10z"/></marker>'
    )


def _text(x: float, y: float, content: str, css_class: str = "", anchor: str = "") -> str:
    """A <text> element; ``content`` is escaped here."""
    attrs = f' class="{css_class}"' if css_class else ""
    attrs += f' text-anchor="{anchor}"' if anchor else ""
    return f'<text{attrs} x="{_num(x)}" y="{_num(y)}">{_esc(content)}</text>'


def _rect(box: _Box, radius: float) -> str:
    return (
        f'<rect x="{_num(box.x)}" y="{_num(box.y)}" width="{_num(box.w)}" height="{_num(box.h)}"'
        f' rx="{_num(radius)}"/>'
    )


def _problem_list(found: Any) -> list[str]:
    """The problems given for a step, as one-line texts (a single string counts as one)."""
    if isinstance(found, str):
        return [_clean(found)]
    if isinstance(found, Sequence):
        return [_clean(item) for item in found]
    return []


class _Diagram:
    """The boxes, arrows and their positions for one flow."""

    def __init__(self, data: Mapping[str, Any], problems: Mapping[str, Any]):
        raw_nodes = data.get("nodes")
        self.nodes: dict[str, Any] = (
            {_clean(k): v for k, v in raw_nodes.items()} if isinstance(raw_nodes, Mapping) else {}
        )
        self.order = list(self.nodes)
        self.start = _clean(data["start"]) if isinstance(data.get("start"), str) else ""
        flow_id = _clean(data.get("id") or "")
        self.prefix = "flow-diagram-" + (re.sub(r"[^A-Za-z0-9_-]", "-", flow_id) or "untitled")
        self.title = _clean(data.get("title") or flow_id or "without a title")
        self.problems = problems
        self.boxes: dict[str, _Box] = {}
        self.edges: list[_Edge] = []
        self.unreachable: list[str] = []
        self.rows: list[list[_Box]] = []
        self.tops: list[float] = []
        self.bottoms: list[float] = []
        self.exits: list[int] = []
        self.entries: list[int] = []
        self.label_zones: list[float] = []
        self.content_w = STEP_W
        self.turns: dict[int, tuple[float, float]] = {}
        self._collect()
        self._arrange_rows()
        self._place()
        self._route()

    def source_of(self, edge: _Edge) -> _Box:
        return self.boxes[f"s:{edge.source}"]

    def _side_box(self, key: str, kind: str, name: str, word: str) -> None:
        width = max(120.0, len(_short(f"{word}: {name}", LINK_CHARS)) * CHAR_W_LINK + 24)
        self.boxes.setdefault(key, _Box(key, kind, name, width, LINK_H))

    def _collect(self) -> None:
        """Boxes for the steps, and for every other flow and missing step an arrow points to."""
        self.boxes = {f"s:{n}": _Box(f"s:{n}", "step", n, STEP_W, STEP_H) for n in self.order}
        for node_id in self.order:
            for edge in _edges_of(node_id, self.nodes[node_id]):
                target = edge.target
                flow_name = target[5:].split("/", 1)[0] if target.startswith("flow:") else ""
                if flow_name:
                    edge.box = f"f:{flow_name}"
                    self._side_box(edge.box, "flow", flow_name, "flow")
                elif target in self.nodes:
                    edge.box = f"s:{target}"
                else:
                    edge.box = f"m:{target}"
                    self._side_box(edge.box, "missing", target, "missing")
                self.edges.append(edge)

    def _arrange_rows(self) -> None:
        """Rows: steps by distance from the start, other flows and missing steps just below their
        first arrow, and the steps no one can reach in a row of their own after everything else."""
        main: dict[str, list[str]] = {n: [] for n in self.order}
        extra: dict[str, list[str]] = {n: [] for n in self.order}
        for edge in self.edges:
            if edge.target in self.nodes and edge.box.startswith("s:"):
                (extra if edge.style == "answer-link" else main)[edge.source].append(edge.target)
        layer = _layers(self.start, self.order, main, extra)
        self.unreachable = [n for n in self.order if n not in layer]
        side_row: dict[str, int] = {}
        for edge in self.edges:
            if not edge.box.startswith("s:") and edge.source in layer:
                side_row[edge.box] = min(side_row.get(edge.box, 1 << 30), layer[edge.source] + 1)
        last_reachable = max([*layer.values(), *side_row.values()], default=-1)
        for key, box in self.boxes.items():
            if box.kind == "step":
                box.row = layer.get(box.name, last_reachable + 1)
            else:
                box.row = side_row.get(key, last_reachable + 2)
        renumber = {row: index for index, row in enumerate(sorted({b.row for b in self.boxes.values()}))}
        self.rows = [[] for _ in renumber]
        for box in self.boxes.values():  # steps first, in file order, then the others by first arrow
            box.row = renumber[box.row]
            self.rows[box.row].append(box)

    def _place(self) -> None:
        """Each row centred, boxes side by side; first with even gaps between rows."""
        widths = [sum(b.w for b in row) + H_GAP * (len(row) - 1) for row in self.rows]
        self.content_w = max(widths, default=STEP_W)
        for row, row_w in zip(self.rows, widths, strict=True):
            x = (self.content_w - row_w) / 2
            for box in row:
                box.x = x
                x += box.w + H_GAP
        self._place_rows([MIN_ROW_GAP] * len(self.rows), 0.0)

    def _place_rows(self, gaps: list[float], top: float) -> None:
        self.tops, self.bottoms, y = [], [], top
        for index, row in enumerate(self.rows):
            height = max(b.h for b in row)
            self.tops.append(y)
            self.bottoms.append(y + height)
            for box in row:
                box.y = y
            y += height + (gaps[index] if index < len(gaps) else 0)

    @staticmethod
    def _group(edge: _Edge) -> tuple:
        """Arrows drawn as one line until they part: a summary's ways back to its answers share a
        lane (a "bus"), so eighteen answers do not make eighteen lines; every other arrow is alone."""
        if edge.style == "answer-link":
            return ("bus", edge.source, edge.route)
        return ("one", id(edge))

    def _route(self) -> None:
        """Decide which arrows go straight down and which go round the side, then make room."""
        for edge in self.edges:
            source, target = self.source_of(edge), self.boxes[edge.box]
            if target.row <= source.row:
                edge.route = "right"
            elif edge.style == "answer-link":
                edge.route = "left"
            elif target.row > source.row + 1:
                curve = _curve((source.cx, source.bottom), (target.cx, target.y))
                if _crosses(curve, [b for b in self.boxes.values() if b is not source and b is not target]):
                    edge.route = "left"
            source.out_edges.append(edge)
            target.in_edges.append(edge)
        side_edges = [e for e in self.edges if e.route != "direct"]

        # Lanes: the shortest side arrows hug the boxes, so side arrows cross each other less.
        spans: dict[tuple, int] = {}
        for edge in side_edges:
            span = abs(self.boxes[edge.box].row - self.source_of(edge).row)
            spans[self._group(edge)] = max(spans.get(self._group(edge), 0), span)
        for side in ("left", "right"):
            groups = sorted((g for g in spans if g[-1] == side or g[0] == "one"), key=lambda g: spans[g])
            lanes = {}
            for group in groups:
                members = [e for e in side_edges if self._group(e) == group and e.route == side]
                if members:
                    lanes[group] = len(lanes)
                    for edge in members:
                        edge.lane = lanes[group]

        # Gaps tall enough for the turns of side arrows and for the labels of straight ones.
        self.exits = [0] * len(self.rows)
        self.entries = entries = [0] * len(self.rows)
        labels = [0] * len(self.rows)
        for group in spans:
            edge = next(e for e in side_edges if self._group(e) == group)
            self.exits[self.source_of(edge).row] += 1
        for edge in side_edges:
            entries[self.boxes[edge.box].row] += 1
        for edge in self.edges:
            if edge.route == "direct" and edge.label:
                labels[self.source_of(edge).row] += 1
        self.label_zones = [min(120.0, max(LABEL_ZONE, 14.0 * -(-n * 3 // 5))) for n in labels]
        gaps = [
            max(MIN_ROW_GAP, 28 + LANE_STEP * (self.exits[i] + entries[i + 1]) + self.label_zones[i])
            for i in range(len(self.rows) - 1)
        ]
        self._place_rows(gaps, 14 + LANE_STEP * entries[0] if self.rows else 0.0)

        # Ports: where arrows leave (bottom) and enter (top) a box, in an order that avoids crossings:
        # left-side arrows (outer lanes first), straight ones by where they go, right-side arrows.
        def port_order(edge: _Edge, other: _Box) -> tuple[int, float]:
            if edge.route == "direct":
                return (1, other.cx)
            return (0 if edge.route == "left" else 2, -edge.lane if edge.route == "right" else edge.lane)

        for box in self.boxes.values():
            box.out_edges.sort(key=lambda e: port_order(e, self.boxes[e.box]))
            ports = list(dict.fromkeys(self._group(e) for e in box.out_edges))
            for edge in box.out_edges:
                index = ports.index(self._group(edge))
                edge.start = (box.x + box.w * (index + 1) / (len(ports) + 1), box.bottom)
            box.in_edges.sort(key=lambda e: port_order(e, self.source_of(e)))
            for index, edge in enumerate(box.in_edges):
                edge.end = (box.x + box.w * (index + 1) / (len(box.in_edges) + 1), box.y)

        # Turning heights of side arrows in each gap: inner lanes turn nearer the boxes.
        out_turn: dict[tuple, float] = {}
        out_count: dict[int, int] = {}
        in_count: dict[int, int] = {}
        for edge in sorted(side_edges, key=lambda e: e.lane):
            row_out, row_in = self.source_of(edge).row, self.boxes[edge.box].row
            group = self._group(edge)
            if group not in out_turn:
                rank = out_count.get(row_out, 0)
                out_count[row_out] = rank + 1
                out_turn[group] = self.bottoms[row_out] + 14 + LANE_STEP * rank
            rank_in = in_count.get(row_in, 0)
            in_count[row_in] = rank_in + 1
            self.turns[id(edge)] = (out_turn[group], self.tops[row_in] - 14 - LANE_STEP * rank_in)

    def _label_spots(self, edge: _Edge, curve: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Where an arrow's label may go, best first: on a straight arrow in the gap below its step,
        near the arrow's end; on a side arrow along the line where it turns away from its step."""
        source = self.source_of(edge)
        half = len(edge.label) * CHAR_W_LABEL / 2 + 3
        if edge.route == "direct":
            band_top = self.bottoms[source.row] + 14 + LANE_STEP * self.exits[source.row] + 8
            band_bottom = self.tops[source.row + 1] - 14 - LANE_STEP * self.entries[source.row + 1] - 12
            count = max(1, int((band_bottom - band_top) // 14) + 1)
            return [_at_y(curve, band_bottom - 14 * i) for i in range(count)]
        (sx, _), (lane_x, exit_y) = curve[1], curve[2]
        direction = 1 if lane_x > sx else -1
        reach = abs(lane_x - sx) - 2 * half - 8
        count = max(1, int(reach // 16) + 1)
        return [(sx + direction * (6 + half + 16 * i), exit_y) for i in range(count)]

    @staticmethod
    def _free_spot(
        spots: list[tuple[float, float]], half: float, placed: list[tuple[float, float, float, float]]
    ) -> tuple[float, float]:
        """The first spot where a label of half-width ``half`` covers no placed label (else the one that
        covers least); the chosen label is added to ``placed``."""
        best = spots[0]
        best_overlap = float("inf")
        for x, y in spots:
            rect = (x - half, y - 7, x + half, y + 7)
            overlap = sum(
                max(0.0, min(rect[2], other[2]) - max(rect[0], other[0]))
                * max(0.0, min(rect[3], other[3]) - max(rect[1], other[1]))
                for other in placed
            )
            if overlap < best_overlap:
                best, best_overlap = (x, y), overlap
            if not overlap:
                break
        placed.append((best[0] - half, best[1] - 7, best[0] + half, best[1] + 7))
        return best

    def draw_edges(self, bounds: list[float]) -> str:
        """The arrows with their labels; ``bounds`` (min x, min y, max x, max y) grows to fit them."""
        p = self.prefix
        paths: dict[int, str] = {}
        spots: dict[int, list[tuple[float, float]]] = {}
        for edge in self.edges:
            (sx, sy), (tx, ty) = edge.start, edge.end
            if edge.route == "direct":
                curve = _curve(edge.start, edge.end)
                paths[id(edge)] = "M{},{}C{},{} {},{} {},{}".format(*(_num(v) for pt in curve for v in pt))
            else:
                exit_y, entry_y = self.turns[id(edge)]
                if edge.route == "right":
                    lane_x = self.content_w + 16 + LANE_GAP * edge.lane
                else:
                    lane_x = -16 - LANE_GAP * edge.lane
                curve = [(sx, sy), (sx, exit_y), (lane_x, exit_y), (lane_x, entry_y), (tx, entry_y), (tx, ty)]
                paths[id(edge)] = _rounded(curve)
                bounds[0], bounds[1] = min(bounds[0], lane_x), min(bounds[1], entry_y)
                bounds[2], bounds[3] = max(bounds[2], lane_x), max(bounds[3], exit_y)
            if edge.label:
                spots[id(edge)] = self._label_spots(edge, curve)

        # Labels of straight arrows first: they have the least room to move.
        placed: list[tuple[float, float, float, float]] = []
        labels: dict[int, str] = {}
        for edge in sorted((e for e in self.edges if e.label), key=lambda e: e.route != "direct"):
            half = len(edge.label) * CHAR_W_LABEL / 2 + 3
            x, y = self._free_spot(spots[id(edge)], half, placed)
            labels[id(edge)] = _text(x, y + 4, edge.label, anchor="middle")
            bounds[0], bounds[2] = min(bounds[0], x - half), max(bounds[2], x + half)

        drawn: list[str] = []
        for edge in self.edges:
            classes = ["edge"]
            target_kind = self.boxes[edge.box].kind
            if target_kind != "step":
                classes.append("missing" if target_kind == "missing" else "to-flow")
            if edge.route != "direct":
                classes.append("back" if edge.route == "right" else "long")
            if edge.style:
                classes.append(edge.style)
            marker = "arrow-missing" if target_kind == "missing" else "arrow-faint" if edge.style else "arrow"
            drawn.append(
                f'<g class="{" ".join(classes)}" data-from="{_esc(edge.source)}"'
                f' data-to="{_esc(edge.target)}">'
                f'<path d="{paths[id(edge)]}" marker-end="url(#{p}-{marker})"/>{labels.get(id(edge), "")}</g>'
            )
        return "".join(drawn)

    def draw_boxes(self) -> str:
        """The boxes: each step with its id, a bit of its text and its kind; other flows; missing steps."""
        drawn: list[str] = []
        for box in self.boxes.values():
            if box.kind != "step":
                word, css_class, attribute = {
                    "flow": ("flow", "flow-link", "data-flow"),
                    "missing": ("missing", "missing-step", "data-missing"),
                }[box.kind]
                drawn.append(
                    f'<g class="{css_class}" {attribute}="{_esc(box.name)}">'
                    f"{_rect(box, 15 if box.kind == 'flow' else 2)}"
                    f"{_text(box.cx, box.y + 19, _short(f'{word}: {box.name}', LINK_CHARS), anchor='middle')}"
                    "</g>"
                )
                continue
            node = self.nodes[box.name]
            classes, notes = ["step"], []
            if box.name == self.start:
                classes.append("start")
                notes.append("start")
            if box.name in self.unreachable:
                classes.append("unreachable")
                notes.append("unreachable")
            notes.append(_kind_words(node))
            if _is_broken(node):
                classes.append("broken")
            said = _problem_list(self.problems.get(box.name))
            tooltip = ""
            if said:
                classes.append("problem")
                notes.append("1 problem" if len(said) == 1 else f"{len(said)} problems")
                tooltip = f"<title>{_esc('Problems: ' + '; '.join(said))}</title>"
            drawn.append(
                f'<g class="{" ".join(classes)}" data-step="{_esc(box.name)}">{tooltip}{_rect(box, 4)}'
                f"{_text(box.x + 10, box.y + 19, _short(box.name, ID_CHARS), 'id')}"
                f"{_text(box.x + 10, box.y + 37, _excerpt(node), 'excerpt')}"
                f"{_text(box.x + 10, box.y + 54, ' · '.join(notes), 'kind')}</g>"
            )
        if not self.nodes:
            drawn.append(_text(10, 30, "This flow has no steps yet.", "empty"))
        return "".join(drawn)

    def describe(self) -> str:
        """The diagram in words, for screen readers: each step in the order drawn, and where it leads."""
        if self.start in self.nodes:
            sentences = [f"Starts at {self.start}."]
        else:
            sentences = [f"The start step {self.start or '(none)'} does not exist."]
        parts = []
        steps = [b for b in self.boxes.values() if b.kind == "step"]
        for box in sorted(steps, key=lambda b: (b.row, self.order.index(b.name))):
            name = box.name + (" (unreachable)" if box.name in self.unreachable else "")
            places: list[str] = []
            answers = False
            for edge in [e for e in self.edges if e.source == box.name]:
                kind = self.boxes[edge.box].kind
                if edge.style == "answer-link":
                    answers = True
                    continue
                if kind == "step":
                    words = edge.target
                elif kind == "missing":
                    words = f"{edge.target} (missing)"
                else:
                    flow_name, _, step = edge.target[5:].partition("/")
                    words = f"step {step} of the flow {flow_name}" if step else f"the flow {flow_name}"
                if words not in places:
                    places.append(words)
            node = self.nodes[box.name]
            if places:
                back = ", and back to any answer it shows" if answers else ""
                parts.append(f"{name} leads to {', '.join(places)}{back}")
            elif isinstance(node, Mapping) and node.get("kind") == "end":
                parts.append(f"{name} ends the conversation")
            else:
                parts.append(f"{name} leads nowhere")
        if parts:
            sentences.append("; ".join(parts) + ".")
        return " ".join(sentences)


def flow_diagram(data: dict, problems: Mapping[str, Sequence[str]] | None = None) -> Markup:
    """The flow drawn as an SVG element: steps as boxes, where each leads as labelled arrows."""
    diagram = _Diagram(
        data if isinstance(data, Mapping) else {}, problems if isinstance(problems, Mapping) else {}
    )
    p = diagram.prefix
    bounds = [0.0, 0.0, diagram.content_w, diagram.bottoms[-1] if diagram.rows else STEP_H]
    if not diagram.nodes:
        bounds[2] = max(bounds[2], 200.0)
    edges, boxes = diagram.draw_edges(bounds), diagram.draw_boxes()
    x, y = bounds[0] - MARGIN, bounds[1] - MARGIN
    width, height = bounds[2] - bounds[0] + 2 * MARGIN, bounds[3] - bounds[1] + 2 * MARGIN + 4
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{p}" class="flow-diagram" role="img"'
        f' aria-labelledby="{p}-title {p}-desc"'
        f' viewBox="{_num(x)} {_num(y)} {_num(width)} {_num(height)}"'
        f' width="{_num(width)}" height="{_num(height)}">'
        f'<title id="{p}-title">{_esc("Diagram of the flow " + diagram.title)}</title>'
        f'<desc id="{p}-desc">{_esc(diagram.describe())}</desc>'
        f"<style>{_css(p)}</style>"
        f"<defs>{_marker(p, 'arrow', 'arrowhead')}{_marker(p, 'arrow-missing', 'arrowhead missing')}"
        f"{_marker(p, 'arrow-faint', 'arrowhead faint')}</defs>"
        f'<g class="edges">{edges}</g><g class="boxes">{boxes}</g></svg>'
    )
