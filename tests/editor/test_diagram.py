"""The flow diagram: every step a box, every way on an arrow, readable, escaped and never broken."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.editor.diagram import flow_diagram
from app.engine.definition import read_yaml
from app.engine.nodes import REGISTRY

FLOWS = Path(__file__).resolve().parents[2] / "flows"
SVG = "{http://www.w3.org/2000/svg}"
REAL_FLOWS = sorted(p.stem for p in FLOWS.glob("*.yaml") if p.stem != "messages")


def load(name: str) -> dict[str, Any]:
    return read_yaml((FLOWS / f"{name}.yaml").read_text())


def draw(data: Any, problems: dict[str, list[str]] | None = None) -> ET.Element:
    return ET.fromstring(str(flow_diagram(data, problems)))


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def steps(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-step"): g for g in svg.iter(f"{SVG}g") if "step" in classes(g)}


def edges(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if "edge" in classes(g)]


def box(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    x, y = float(rect.get("x")), float(rect.get("y"))
    return x, y, x + float(rect.get("width")), y + float(rect.get("height"))


def all_boxes(svg: ET.Element) -> list[tuple[float, float, float, float]]:
    kinds = {"step", "flow-link", "missing-step"}
    return [box(g) for g in svg.iter(f"{SVG}g") if classes(g) & kinds]


def texts(group: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in group.iter(f"{SVG}text")]


def engine_targets(data: dict[str, Any]) -> Counter:
    found: Counter = Counter()
    for node_id, node in data["nodes"].items():
        for target, _ in REGISTRY[node["kind"]](data["id"], node_id, node, {}).targets():
            found[(node_id, target)] += 1
    return found


@pytest.mark.parametrize("name", REAL_FLOWS)
def test_every_step_has_a_box_and_every_way_on_an_arrow(name: str) -> None:
    data = load(name)
    svg = draw(data)
    assert set(steps(svg)) == set(data["nodes"])
    drawn = Counter((g.get("data-from"), g.get("data-to")) for g in edges(svg))
    assert drawn == engine_targets(data)


@pytest.mark.parametrize("name", REAL_FLOWS)
def test_no_two_boxes_overlap_and_everything_fits_in_the_picture(name: str) -> None:
    svg = draw(load(name))
    rects = all_boxes(svg)
    for index, (ax1, ay1, ax2, ay2) in enumerate(rects):
        for bx1, by1, bx2, by2 in rects[index + 1 :]:
            assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1, "two boxes overlap"
    vx, vy, vw, vh = map(float, svg.get("viewBox").split())
    points = [(x1, y1) for x1, y1, _, _ in rects] + [(x2, y2) for _, _, x2, y2 in rects]
    for group in edges(svg):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", group.find(f"{SVG}path").get("d"))]
        points += list(zip(numbers[::2], numbers[1::2], strict=True))
    for x, y in points:
        assert vx <= x <= vx + vw and vy <= y <= vy + vh


def test_the_start_step_is_at_the_top_and_rows_follow_the_distance_from_it() -> None:
    svg = draw(load("wishes"))
    top = {step: box(g)[1] for step, g in steps(svg).items()}
    assert top["check_saved"] < min(y for step, y in top.items() if step != "check_saved")
    assert "start" in classes(steps(svg)["check_saved"])
    assert "start" in texts(steps(svg)["check_saved"])[-1]
    assert top["welcome_back"] == top["check_review"] < top["summary"] == top["intro_dated"]
    assert top["overall"] < top["home"] == top["anything_at_all"] < top["family"]


def test_a_step_no_one_can_reach_is_dashed_in_a_last_row_of_its_own() -> None:
    data = load("wishes")
    data["nodes"]["orphan"] = {"kind": "say", "text": "Nobody leads here.", "next": "summary"}
    svg = draw(data)
    orphan = steps(svg)["orphan"]
    assert "unreachable" in classes(orphan)
    assert "unreachable" in texts(orphan)[-1]
    others = [box(g)[3] for step, g in steps(svg).items() if step != "orphan"]
    assert box(orphan)[1] > max(others)
    assert "unreachable" not in classes(steps(svg)["summary"])
    assert "orphan (unreachable) leads to summary" in svg.find(f"{SVG}desc").text


def test_a_choice_leading_to_a_missing_step_draws_a_red_arrow_to_a_missing_box() -> None:
    data = load("wishes")
    data["nodes"]["overall"]["choices"][1]["goto"] = "homme"
    svg = draw(data)
    arrow = next(g for g in edges(svg) if g.get("data-to") == "homme")
    assert arrow.get("data-from") == "overall"
    assert {"edge", "missing"} <= classes(arrow)
    missing = [g for g in svg.iter(f"{SVG}g") if g.get("data-missing") == "homme"]
    assert len(missing) == 1 and texts(missing[0]) == ["missing: homme"]
    assert not any("missing" in classes(g) for g in edges(svg) if g.get("data-to") == "home")


def test_links_to_other_flows_go_to_one_small_box_per_flow() -> None:
    data = load("main_menu")
    data["nodes"]["menu"]["choices"].append({"label": "Views again", "goto": "flow:wishes/home"})
    svg = draw(data)
    links = {g.get("data-flow"): texts(g) for g in svg.iter(f"{SVG}g") if "flow-link" in classes(g)}
    assert links["wishes"] == ["flow: wishes"]
    assert set(links) == {"who_is_my_iro", "wishes", "my_plan", "concerns", "rights", "about", "language"}
    assert [g.get("data-to") for g in edges(svg)][-2:] == ["flow:language", "flow:wishes/home"]
    assert "step home of the flow wishes" in svg.find(f"{SVG}desc").text


def test_arrows_are_labelled_with_choices_yes_no_skip_and_branch_cases() -> None:
    svg = draw(load("wishes"))

    def label(source: str, target: str) -> list[str]:
        return [
            t
            for g in edges(svg)
            if (g.get("data-from"), g.get("data-to")) == (source, target)
            for t in texts(g)
        ]

    assert label("advocate", "ask_advocate") == ["yes"]
    assert sorted(label("advocate", "summary")) == ["no", "skip"]
    assert label("check_review", "intro_undated") == ["otherwise"]
    assert label("check_review", "intro_dated") == ["if next_review"]
    assert label("overall", "anything_at_all") == ["Everything is fine,\u2026"]
    assert sorted(label("overall", "home")) == ["Good", "Not good", "OK", "skip"]


def test_each_box_shows_the_step_id_a_short_excerpt_and_its_kind() -> None:
    svg = draw(load("wishes"))
    assert texts(steps(svg)["home"]) == ["home", "How are things where you live?", "ask"]
    name, excerpt, kind = texts(steps(svg)["overall"])
    assert name == "overall" and kind == "choice"
    assert excerpt.startswith("How are things going") and excerpt.endswith("\u2026") and len(excerpt) <= 41


def test_a_step_with_problems_gets_a_red_border_and_a_tooltip_listing_them() -> None:
    problems = {"overall": ["leads to 'homme', which is not a step", "too long for one SMS"]}
    svg = draw(load("wishes"), problems)
    overall = steps(svg)["overall"]
    assert "problem" in classes(overall)
    tooltip = overall.find(f"{SVG}title").text
    assert "leads to 'homme', which is not a step" in tooltip and "too long for one SMS" in tooltip
    assert "2 problems" in texts(overall)[-1]
    assert not any("problem" in classes(g) for step, g in steps(svg).items() if step != "overall")
    assert "#b00020" in svg.find(f"{SVG}style").text


def test_the_picture_has_an_accessible_name_and_says_the_journey_in_words() -> None:
    svg = draw(load("wishes"))
    assert svg.get("role") == "img"
    title_id, desc_id = svg.get("aria-labelledby").split()
    title = next(e for e in svg.iter() if e.get("id") == title_id)
    desc = next(e for e in svg.iter() if e.get("id") == desc_id)
    assert title.tag == f"{SVG}title" and title.text == "Diagram of the flow My views for my review"
    assert desc.tag == f"{SVG}desc"
    assert desc.text.startswith("Starts at check_saved. check_saved leads to welcome_back, check_review;")
    assert "overall leads to home, anything_at_all;" in desc.text
    assert "summary leads to send, change, kept, and back to any answer it shows;" in desc.text
    assert "; sent ends the conversation" in desc.text


def test_two_diagrams_on_one_page_do_not_share_ids() -> None:
    first, second = draw(load("wishes")), draw(load("main_menu"))
    ids = [{e.get("id") for e in svg.iter() if e.get("id")} for svg in (first, second)]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    for svg, own in zip((first, second), ids, strict=True):
        for group in edges(svg):
            marker = re.fullmatch(r"url\(#(.+)\)", group.find(f"{SVG}path").get("marker-end")).group(1)
            assert marker in own
        # The styles apply to this diagram only (a <style> in inline SVG would otherwise restyle the page).
        rules = [r for r in svg.find(f"{SVG}style").text.split("}") if r.strip()]
        assert all(rule.startswith(f"#{svg.get('id')} ") for rule in rules)


def test_text_typed_by_staff_is_escaped_and_stays_text() -> None:
    data = load("wishes")
    data["title"] = 'Views <b>"bold"</b> & more'
    data["nodes"]["home"]["text"] = "<script>alert('hi')</script>"
    data["nodes"]["overall"]["choices"][0]["label"] = "</text><script>x</script>"
    svg = draw(data, {"home": ["<img src=x onerror=alert(1)>"]})
    assert not [e for e in svg.iter() if e.tag.endswith("script") or e.tag.endswith("img")]
    assert texts(steps(svg)["home"])[1] == "<script>alert('hi')</script>"
    assert svg.find(f"{SVG}title").text == 'Diagram of the flow Views <b>"bold"</b> & more'
    assert steps(svg)["home"].find(f"{SVG}title").text == "Problems: <img src=x onerror=alert(1)>"
    assert "</text><script>x</sc\u2026" in [t for g in edges(svg) for t in texts(g)]


def _broken(change: str) -> Any:
    data = copy.deepcopy(load("wishes"))
    nodes = data["nodes"]
    if change == "node without kind":
        del nodes["home"]["kind"]
    elif change == "choices not a list":
        nodes["overall"]["choices"] = "Good, OK"
    elif change == "choice not a mapping":
        nodes["overall"]["choices"][0] = "Good"
    elif change == "nodes not a dict":
        data["nodes"] = ["overall", "home"]
    elif change == "node not a dict":
        nodes["home"] = "ask"
    elif change == "unknown kind":
        nodes["home"]["kind"] = "question"
    elif change == "start missing":
        data["start"] = "nowhere"
    elif change == "no start":
        del data["start"]
    elif change == "target not text":
        nodes["home"]["next"] = ["family"]
        nodes["overall"]["choices"][0]["goto"] = None
    elif change == "empty flow link":
        nodes["home"]["next"] = "flow:"
    elif change == "loop to itself":
        nodes["home"]["next"] = "home"
    elif change == "not a flow":
        return ["not", "a", "flow"]
    elif change == "everything empty":
        return {}
    return data


BROKEN = [
    "node without kind",
    "choices not a list",
    "choice not a mapping",
    "nodes not a dict",
    "node not a dict",
    "unknown kind",
    "start missing",
    "no start",
    "target not text",
    "empty flow link",
    "loop to itself",
    "not a flow",
    "everything empty",
]


@pytest.mark.parametrize("change", BROKEN)
def test_a_broken_draft_is_still_drawn(change: str) -> None:
    data = _broken(change)
    svg = draw(data)
    nodes = data.get("nodes") if isinstance(data, dict) else None
    expected = set(nodes) if isinstance(nodes, dict) else set()
    assert set(steps(svg)) == expected
    rects = all_boxes(svg)
    for index, (ax1, ay1, ax2, ay2) in enumerate(rects):
        for bx1, by1, bx2, by2 in rects[index + 1 :]:
            assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1


def test_broken_steps_are_marked_and_what_can_be_drawn_still_is() -> None:
    svg = draw(_broken("node without kind"))
    assert "broken" in classes(steps(svg)["home"]) and texts(steps(svg)["home"])[-1] == "no kind"
    assert {(g.get("data-from"), g.get("data-to")) for g in edges(svg)} >= {("home", "family")}
    svg = draw(_broken("unknown kind"))
    assert "unknown kind" in texts(steps(svg)["home"])[-1]
    svg = draw(_broken("start missing"))
    assert all("unreachable" in classes(g) for g in steps(svg).values())
    assert "The start step nowhere does not exist." in svg.find(f"{SVG}desc").text
    svg = draw(_broken("choices not a list"))
    assert not [g for g in edges(svg) if g.get("data-from") == "overall" and g.get("data-to") != "home"]


def test_side_arrows_never_run_through_a_box() -> None:
    svg = draw(load("wishes"))
    rects = {step: box(g) for step, g in steps(svg).items()}
    side = [g for g in edges(svg) if classes(g) & {"back", "long"}]
    assert side, "wishes has arrows back to the summary"
    for group in side:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", group.find(f"{SVG}path").get("d"))]
        points = list(zip(numbers[::2], numbers[1::2], strict=True))
        for (x1, y1), (x2, y2) in zip(points[1:-2], points[2:-1], strict=True):
            for x_min, y_min, x_max, y_max in rects.values():
                inside_x = max(x1, x2) > x_min + 1 and min(x1, x2) < x_max - 1
                inside_y = max(y1, y2) > y_min + 1 and min(y1, y2) < y_max - 1
                assert not (inside_x and inside_y), f"{group.get('data-from')} -> {group.get('data-to')}"
