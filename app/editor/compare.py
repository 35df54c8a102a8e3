"""What changed between two versions of a flow, in plain words for the person reviewing it.

Pure: takes two flows as loaded from YAML (either may be a broken draft) and returns sentences in a
stable order: the title and description, where the flow starts, then each step in the new file's
order, then the steps that were removed, then whether the steps were reordered. Texts are quoted in
full (this is for review) but on one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

KIND_WORDS = {
    "say": "a message",
    "ask": "a question",
    "choice": "a question with choices",
    "confirm": "a yes or no question",
    "branch": "a check that picks the way on",
    "jump": "a jump",
    "end": "an ending",
    "record": "a note for staff",
    "summary": "a summary of the answers",
    "change": "a step to change an answer",
    "actions": "the action plan",
}

# Fields that lead somewhere: how to say where they lead now, and that they no longer lead anywhere.
TARGET_WORDS = {
    "next": ("now leads to", "no longer leads anywhere"),
    "goto": ("now leads to", "no longer leads anywhere"),
    "yes": ('"yes" now leads to', '"yes" no longer leads anywhere'),
    "no": ('"no" now leads to', '"no" no longer leads anywhere'),
    "otherwise": ("otherwise it now leads to", "otherwise it no longer leads anywhere"),
    "none": ("with no actions it now leads to", "with no actions it no longer leads anywhere"),
    "summary": ("now returns to the summary", "no longer names its summary"),
}
TEXT_WORDS = {"text": "the text", "empty_text": "the text when there are no actions"}
FIELD_WORDS = {
    "effect": "what it records",
    "route": "who it goes to",
    "category": "the category",
    "category_from": "the answer the category comes from",
    "detail_from": "the answer the details come from",
    "answers_from": "the answers it sends",
    "action_from": "the answer naming the action",
    "private": "the private answers",
    "reading_note": "the reading note",
}
# The order fields are described in; any other field comes after these, in file order.
FIELD_ORDER = (
    "kind",
    "text",
    "empty_text",
    "choices",
    "items",
    "cases",
    "rows",
    "yes",
    "no",
    "otherwise",
    "goto",
    "next",
    "none",
    "summary",
    "skip",
    "save",
)


def _line(value: Any) -> str:
    """A value as one line of text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_line(item) for item in value)
    return " ".join(str(value).split())


def _q(value: Any) -> str:
    """A value quoted, in full, on one line."""
    return f'"{_line(value)}"'


def _kind_words(kind: Any) -> str:
    if isinstance(kind, str) and kind in KIND_WORDS:
        return KIND_WORDS[kind]
    if kind is None:
        return "a step with no kind"
    return f"a step of the unknown kind {_q(kind)}"


def _nodes(flow: Mapping[str, Any]) -> dict[str, Any]:
    nodes = flow.get("nodes")
    return {_line(k): v for k, v in nodes.items()} if isinstance(nodes, Mapping) else {}


def _scalar(words: str, old: Any, new: Any) -> list[str]:
    """A field with a single value: set, removed or changed."""
    if old == new:
        return []
    if old is None:
        return [f"{words} set to {_q(new)}"]
    if new is None:
        return [f"{words} removed (was {_q(old)})"]
    if isinstance(old, Mapping | list) or isinstance(new, Mapping | list):
        if isinstance(old, list) and isinstance(new, list) and all(isinstance(v, str) for v in old + new):
            return [f"{words} changed from {_q(old)} to {_q(new)}"]
        return [f"{words} changed"]
    return [f"{words} changed from {_q(old)} to {_q(new)}"]


def _text(words: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if old is None:
        return [f"{words} is now {_q(new)} (there was none)"]
    if new is None:
        return [f"{words} {_q(old)} was removed"]
    return [f"{words} changed from {_q(old)} to {_q(new)}"]


def _target(field: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    lead, gone = TARGET_WORDS[field]
    if old is None:
        return [f"{lead} {_q(new)}"]
    if new is None:
        return [f"{gone} (was {_q(old)})"]
    return [f"{lead} {_q(new)} (was {_q(old)})"]


def _skip(old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if old is None:
        return [f"can now be skipped: SKIP leads to {_q(new)}"]
    if new is None:
        return [f"can no longer be skipped (SKIP led to {_q(old)})"]
    return [f"SKIP now leads to {_q(new)} (was {_q(old)})"]


def _save(old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if old is None:
        return [f"the answer is now saved as {_q(new)}"]
    if new is None:
        return [f"the answer is no longer saved (was saved as {_q(old)})"]
    return [f"the answer is now saved as {_q(new)} (was {_q(old)})"]


def _as_list(value: Any) -> list[Any] | None:
    """A list field, with missing meaning empty; None if it is there but not a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else None


def _match(
    old: list[Any], new: list[Any], key: Callable[[Any], Any]
) -> tuple[list[tuple[int, int]], list[int]]:
    """Pair old and new items: same key first, then what is left at the same place.
    Returns the pairs (old index, new index) in new order and the old indexes left unpaired."""
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for j, item in enumerate(new):
        for i, before in enumerate(old):
            if i not in used and key(before) == key(item):
                pairs[j] = i
                used.add(i)
                break
    for j in range(len(new)):
        if j not in pairs and j < len(old) and j not in used:
            pairs[j] = j
            used.add(j)
    return sorted(((i, j) for j, i in pairs.items()), key=lambda pair: pair[1]), [
        i for i in range(len(old)) if i not in used
    ]


def _choice_changes(old_value: Any, new_value: Any) -> list[str]:
    old, new = _as_list(old_value), _as_list(new_value)
    if old is None or new is None:
        return [] if old_value == new_value else ["the choices changed"]

    def fields(choice: Any) -> Mapping[str, Any]:
        return choice if isinstance(choice, Mapping) else {"label": choice}

    pairs, removed = _match(old, new, lambda c: _line(fields(c).get("label")))
    found: list[str] = []
    paired_new = {j for _, j in pairs}
    for j, choice in enumerate(new):
        after = fields(choice)
        if j not in paired_new:
            goto = after.get("goto")
            found.append(
                f"choice {_q(after.get('label'))} added" + (f", leading to {_q(goto)}" if goto else "")
            )
            continue
        before = fields(old[next(i for i, jj in pairs if jj == j)])
        name = f"choice {j + 1} {_q(after.get('label'))}"
        if before.get("label") != after.get("label"):
            found.append(f"choice {j + 1} now says {_q(after.get('label'))} (was {_q(before.get('label'))})")
        for field in dict.fromkeys([*after, *before]):
            was, now = before.get(field), after.get(field)
            if field == "label" or was == now:
                continue
            if field == "goto":
                found.append(f"{name} " + _target("goto", was, now)[0])
            elif field == "value":
                found.append(
                    f"{name} now saves {_q(now) if now is not None else 'its label'}"
                    f" (was {_q(was) if was is not None else 'its label'})"
                )
            elif field == "set_locale":
                if now is None:
                    found.append(f"{name} no longer changes the language (was {_q(was)})")
                else:
                    was_words = f" (was {_q(was)})" if was is not None else ""
                    found.append(f"{name} now changes the language to {_q(now)}{was_words}")
            else:
                found.extend(f"{name}: {s}" for s in _scalar(field.replace("_", " "), was, now))
    found.extend(f"choice {_q(fields(old[i]).get('label'))} removed" for i in removed)
    old_order = [i for i, _ in pairs]
    if old_order != sorted(old_order):
        found.append("the choices are in a different order")
    return found


def _condition(case: Any) -> str:
    """What a branch case checks, in words."""
    if not isinstance(case, Mapping):
        return _q(case)
    if "if_set" in case:
        return f"{_line(case['if_set'])} is set"
    if "if_answered" in case:
        return f"{_line(case['if_answered'])} is answered"
    wanted = case.get("if_answer")
    if isinstance(wanted, Mapping):
        return f"the answer {_line(wanted.get('key'))} is {_q(wanted.get('equals'))}"
    return "something unclear"


def _case_changes(old_value: Any, new_value: Any) -> list[str]:
    old, new = _as_list(old_value), _as_list(new_value)
    if old is None or new is None:
        return [] if old_value == new_value else ["the cases changed"]
    found: list[str] = []
    for index, case in enumerate(new):
        goto = case.get("goto") if isinstance(case, Mapping) else None
        if index >= len(old):
            found.append(f"case {index + 1} added: if {_condition(case)}, it leads to {_q(goto)}")
            continue
        before = old[index]
        was_goto = before.get("goto") if isinstance(before, Mapping) else None
        if _condition(before) != _condition(case):
            found.append(
                f"case {index + 1} now checks whether {_condition(case)} (was whether {_condition(before)})"
            )
        if was_goto != goto:
            found.append(f"case {index + 1} (if {_condition(case)}) " + _target("goto", was_goto, goto)[0])
    found.extend(f"case {i + 1} (if {_condition(old[i])}) removed" for i in range(len(new), len(old)))
    return found


def _item_changes(old_value: Any, new_value: Any) -> list[str]:
    old, new = _as_list(old_value), _as_list(new_value)
    if old is None or new is None or not all(isinstance(i, Mapping) for i in old + new):
        return [] if old_value == new_value else ["the summary rows changed"]
    pairs, removed = _match(old, new, lambda item: item.get("key"))
    paired_new = {j for _, j in pairs}
    found: list[str] = []
    for j, item in enumerate(new):
        if j not in paired_new:
            found.append(
                f"the summary now shows {_q(item.get('label'))} (the answer {_line(item.get('key'))})"
            )
            continue
        before = old[next(i for i, jj in pairs if jj == j)]
        if before.get("key") != item.get("key"):
            found.append(
                f"the summary row {_q(item.get('label'))} now shows the answer {_line(item.get('key'))}"
                f" (was {_line(before.get('key'))})"
            )
        if before.get("label") != item.get("label"):
            found.append(f"the summary row {_q(before.get('label'))} is now called {_q(item.get('label'))}")
        if before.get("node") != item.get("node"):
            found.append(
                f"changing {_q(item.get('label'))} in the summary now goes to {_q(item.get('node'))}"
                f" (was {_q(before.get('node'))})"
            )
    found.extend(f"the summary no longer shows {_q(old[i].get('label'))}" for i in removed)
    old_order = [i for i, _ in pairs]
    if old_order != sorted(old_order):
        found.append("the summary rows are in a different order")
    return found


def _row_changes(old_value: Any, new_value: Any) -> list[str]:
    if not isinstance(old_value, Mapping) or not isinstance(new_value, Mapping):
        return _scalar("the rows", old_value, new_value)
    found: list[str] = []
    for status in dict.fromkeys([*new_value, *old_value]):
        words = f"the row for {_line(status).replace('_', ' ')} actions"
        found.extend(_text(words, old_value.get(status), new_value.get(status)))
    return found


def _step_changes(old: Any, new: Any) -> list[str]:
    """What changed in one step, as phrases to follow 'Step "x": '."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return [] if old == new else ["changed"]
    found: list[str] = []
    known = [f for f in FIELD_ORDER if f in old or f in new]
    others = [f for f in dict.fromkeys([*new, *old]) if f not in FIELD_ORDER]
    for field in [*known, *others]:
        if field == "next" and "goto" in known:
            continue  # "next" and "goto" both say where a step leads: compared once, as "goto"
        was, now = old.get(field), new.get(field)
        if field == "goto":
            was, now = old.get("goto", old.get("next")), new.get("goto", new.get("next"))
        if was == now:
            continue
        if field == "kind":
            found.append(f"it is now {_kind_words(now)} (was {_kind_words(was)})")
        elif field in TEXT_WORDS:
            found.extend(_text(TEXT_WORDS[field], was, now))
        elif field == "choices":
            found.extend(_choice_changes(was, now))
        elif field == "cases":
            found.extend(_case_changes(was, now))
        elif field == "items":
            found.extend(_item_changes(was, now))
        elif field == "rows":
            found.extend(_row_changes(was, now))
        elif field in TARGET_WORDS:
            found.extend(_target(field, was, now))
        elif field == "skip":
            found.extend(_skip(was, now))
        elif field == "save":
            found.extend(_save(was, now))
        else:
            found.extend(_scalar(FIELD_WORDS.get(field, _line(field).replace("_", " ")), was, now))
    return found


def _added(step: str, node: Any) -> str:
    if not isinstance(node, Mapping):
        return f'Step "{step}" added'
    text = node.get("text")
    words = _kind_words(node.get("kind"))
    return f'Step "{step}" added ({words}: {_q(text)})' if text else f'Step "{step}" added ({words})'


def _flow_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Changes outside the steps: title, description, start and anything else at the top."""
    found: list[str] = []
    found.extend(s[0].upper() + s[1:] for s in _text("the title", old.get("title"), new.get("title")))
    found.extend(
        s[0].upper() + s[1:] for s in _text("the description", old.get("description"), new.get("description"))
    )
    if old.get("start") != new.get("start"):
        if new.get("start") is None:
            found.append(f"The flow no longer says where it starts (was {_q(old.get('start'))})")
        else:
            was = f" (was {_q(old.get('start'))})" if old.get("start") is not None else ""
            found.append(f"The flow now starts at {_q(new.get('start'))}{was}")
    if old.get("id") != new.get("id"):
        found.append(f"The flow's id changed from {_q(old.get('id'))} to {_q(new.get('id'))}")
    handled = {"title", "description", "start", "id", "nodes"}
    for field in dict.fromkeys([*new, *old]):
        if field not in handled and old.get(field) != new.get(field):
            found.append(f"The flow's {_line(field).replace('_', ' ')} changed")
    return found


def describe_changes(old: dict, new: dict) -> list[str]:
    """What changed from ``old`` to ``new``, one plain sentence per change (empty if nothing did)."""
    old = old if isinstance(old, Mapping) else {}
    new = new if isinstance(new, Mapping) else {}
    lines = _flow_changes(old, new)
    old_nodes, new_nodes = _nodes(old), _nodes(new)
    for step, node in new_nodes.items():
        if step not in old_nodes:
            lines.append(_added(step, node))
            continue
        for change in _step_changes(old_nodes[step], node):
            lines.append(f'Step "{step}" changed' if change == "changed" else f'Step "{step}": {change}')
    lines.extend(f'Step "{step}" removed' for step in old_nodes if step not in new_nodes)
    if old.get("nodes") != new.get("nodes") and not isinstance(new.get("nodes"), Mapping):
        lines.append("The steps could not be read in the new version")
    kept_old = [step for step in old_nodes if step in new_nodes]
    kept_new = [step for step in new_nodes if step in old_nodes]
    if kept_old != kept_new:
        lines.append("The steps are in a different order")
    return lines
