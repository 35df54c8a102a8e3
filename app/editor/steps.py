"""A flow as form fields and back: what the draft editor shows and what it saves.

Each step's common fields (its text, where it leads, the answer it saves, its choices) get their
own inputs; anything else a step kind has (a branch's cases, what a record step records) is kept as
a small YAML box under "More settings", so no field is ever lost by editing in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from werkzeug.datastructures import MultiDict

from app.engine.definition import read_yaml
from app.engine.nodes import REGISTRY

TARGET_FIELDS = {
    "next": "Then go to",
    "goto": "Go to",
    "yes": "If yes, go to",
    "no": "If no, go to",
    "otherwise": "Otherwise go to",
    "none": "If there are none, go to",
    "skip": "SKIP or NOT SURE goes to",
}
CHOICE_FIELDS = ("label", "goto", "keywords", "value")
# Kinds a new step can have: the ones whose fields all have inputs here.
NEW_STEP_KINDS = {
    "say": "Message (say something, then move on)",
    "ask": "Question (free answer)",
    "choice": "Choice (numbered options)",
    "confirm": "Yes or no question",
}
MAX_STEPS = 200
MAX_CHOICES = 9


class FormError(ValueError):
    """The form cannot be turned into a flow (a More settings box is not valid YAML...)."""


@dataclass
class StepForm:
    """One step as the form shows it."""

    id: str
    kind: str
    text: str | None = None
    save: str | None = None
    targets: dict[str, str] = field(default_factory=dict)  # only the fields this kind has
    choices: list[dict[str, str]] | None = None
    more: str = ""  # YAML of every other field
    extra_choice_fields: list[dict[str, Any]] = field(default_factory=list)  # e.g. set_locale, kept

    @property
    def kind_fields(self) -> set[str]:
        kind = REGISTRY.get(self.kind)
        return set(kind.schema["properties"]) if kind else set()


def _properties(kind: str) -> set[str]:
    cls = REGISTRY.get(kind)
    return set(cls.schema["properties"]) if cls else set()


def steps_from_flow(data: dict[str, Any]) -> list[StepForm]:
    """The steps of a flow, in file order, as form rows."""
    steps = []
    nodes = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    for node_id, node in nodes.items():
        node = node if isinstance(node, dict) else {}
        kind = str(node.get("kind", ""))
        props = _properties(kind)
        step = StepForm(id=str(node_id), kind=kind)
        if "text" in props:
            step.text = str(node.get("text", ""))
        if "save" in props:
            step.save = str(node.get("save", ""))
        step.targets = {name: str(node.get(name, "")) for name in TARGET_FIELDS if name in props}
        rest = {k: v for k, v in node.items() if k not in {"kind", "text", "save", "choices", *TARGET_FIELDS}}
        if "choices" in props and isinstance(node.get("choices"), list):
            step.choices = []
            for choice in node["choices"]:
                choice = choice if isinstance(choice, dict) else {}
                step.choices.append({name: str(choice.get(name, "")) for name in CHOICE_FIELDS})
                step.extra_choice_fields.append({k: v for k, v in choice.items() if k not in CHOICE_FIELDS})
        elif "choices" in node:
            rest["choices"] = node["choices"]
        step.more = yaml.safe_dump(rest, allow_unicode=True, sort_keys=False, width=100) if rest else ""
        steps.append(step)
    return steps


def steps_from_form(form: MultiDict[str, str]) -> list[StepForm]:
    """The steps as posted (``step-<i>-<field>``, ``step-<i>-choice-<j>-<field>``), in form order."""
    count = min(_int(form.get("step-count")), MAX_STEPS)
    steps = []
    for i in range(count):
        prefix = f"step-{i}-"
        if prefix + "id" not in form:
            continue
        kind = form.get(prefix + "kind", "")
        props = _properties(kind)
        step = StepForm(id=form.get(prefix + "id", "").strip(), kind=kind, more=form.get(prefix + "more", ""))
        if "text" in props:
            step.text = _clean(form.get(prefix + "text", ""))
        if "save" in props:
            step.save = form.get(prefix + "save", "").strip()
        step.targets = {name: form.get(prefix + name, "").strip() for name in TARGET_FIELDS if name in props}
        if "choices" in props:
            step.choices = []
            for j in range(min(_int(form.get(prefix + "choice-count")), MAX_CHOICES + 1)):
                cp = f"{prefix}choice-{j}-"
                if cp + "label" not in form:
                    continue
                step.choices.append({name: _clean(form.get(cp + name, "")) for name in CHOICE_FIELDS})
                step.extra_choice_fields.append(
                    _yaml_mapping(form.get(cp + "extra", ""), step.id, "a choice")
                )
        steps.append(step)
    return steps


def flow_from_steps(head: dict[str, Any], steps: list[StepForm]) -> dict[str, Any]:
    """The flow data (as in the YAML file) for a header (id, title, description, start) and steps."""
    nodes: dict[str, Any] = {}
    for step in steps:
        node: dict[str, Any] = {"kind": step.kind}
        if step.text is not None and step.text != "":
            node["text"] = step.text
        if step.save:
            node["save"] = step.save
        for name, value in step.targets.items():
            if value:
                node[name] = value
        if step.choices is not None:
            node["choices"] = []
            for index, choice in enumerate(step.choices):
                item = {name: value for name, value in choice.items() if value}
                extra = step.extra_choice_fields[index] if index < len(step.extra_choice_fields) else {}
                node["choices"].append({**item, **extra})
        node.update(_yaml_mapping(step.more, step.id, "More settings"))
        key = step.id or f"unnamed_{len(nodes) + 1}"
        while key in nodes:  # two steps given the same id: keep both, the check names it
            key += "_copy"
        nodes[key] = node
    data = {k: head[k] for k in ("id", "title", "description", "start") if head.get(k)}
    data["nodes"] = nodes
    return data


def to_yaml(data: dict[str, Any]) -> str:
    """The flow as YAML, in the shape of the shipped files."""
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def from_yaml(text: str) -> dict[str, Any]:
    """Flow data from a version's YAML ({} if it cannot be read)."""
    try:
        data = read_yaml(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def new_step(kind: str, taken: set[str]) -> StepForm:
    """A blank step of a kind, with an id not yet used."""
    number = 1
    while f"new_step_{number}" in taken:
        number += 1
    step = StepForm(id=f"new_step_{number}", kind=kind, text="")
    props = _properties(kind)
    if "save" in props:
        step.save = ""
    step.targets = {name: "" for name in TARGET_FIELDS if name in props}
    if "choices" in props:
        step.choices = [dict.fromkeys(CHOICE_FIELDS, "")]
        step.extra_choice_fields = [{}]
    return step


def _yaml_mapping(text: str, step_id: str, where: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = read_yaml(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "it cannot be read"
        raise FormError(f"Step '{step_id}': {where} is not valid: {problem}.") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormError(f"Step '{step_id}': {where} must be a list of 'name: value' lines.")
    return value


def _clean(text: str) -> str:
    """Text as typed, without the carriage returns browsers send, trimmed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
