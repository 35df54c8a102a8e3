"""Flow definitions: loading YAML, checking it against the schema, and the flow library.

Every problem names the file, the node and the line, so a participation worker or developer can
go straight to it. A flow that fails any check is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from app.engine.nodes import REGISTRY, MessageRef, NodeKind
from app.engine.text import placeholders

ENTRY_FLOW = "main_menu"
LANGUAGE_FLOW = "language"
MESSAGES_FILE = "messages.yaml"

# What the host can put in the read-only context: every {placeholder} must be one of these.
KNOWN_VARIABLES: dict[str, str] = {
    "first_name": "The child's first name",
    "role_title": "The authority's name for the role, e.g. Independent Reviewing Officer",
    "role_short": "The short name for the role, e.g. IRO",
    "iro_name": "The name of the child's current reviewing officer (empty if none yet)",
    "iro_contact": "How to reach the reviewing officer (empty if none yet)",
    "next_review": "The date of the child's next review, in their language (empty if not set)",
    "service_name": "Who runs this service, e.g. Demo Council",
    "out_of_hours": "The authority's out-of-hours phone number",
    "advocacy_contact": "How to reach the advocacy service",
    "reply_time": "How soon staff promise to reply, e.g. two working days",
    "count": "The number of choices (only in the invalid-choice message)",
    "office_closed": "Set when the office is closed now (for branches)",
    "office_opens": "When the office next opens, e.g. Monday 30 November at 9:00",
    "what": "An action from the review (only in my plan rows)",
    "who": "Who does the action (only in my plan rows)",
    "due": "When the action is due (only in my plan rows)",
}

# System messages the runtime and host rely on; messages.yaml must define each.
REQUIRED_MESSAGES: dict[str, str] = {
    "invalid_choice": "A choice was not understood",
    "invalid_yes_no": "A yes or no answer was not understood",
    "empty_answer": "An empty answer to a question",
    "nothing_to_go_back_to": "BACK at the first question",
    "help": "Reply to HELP",
    "opted_out": "Reply to STOP",
    "opted_in": "Reply to START",
    "resume": "Before repeating a question the child left unanswered",
    "unknown_sender": "Reply to a number or chat that is not linked to any child",
    "safety_urgent": "Reply to any message that may mean a child is at risk",
    "unknown_chat": "Reply to a Telegram chat that is not linked to any child and sent no code",
    "link_ok": "Reply when a child's code links their Telegram chat",
    "link_failed": "Reply to a wrong, used or expired link code (it must reveal nothing)",
    "link_too_many": "Reply after too many wrong link codes from one chat",
    "words_only": "Reply to a photo, sticker or voice note: only text can be read",
    "reminder_invite": "Unasked invite to give views before a review; discreet: no care, review, IRO, names",
    "reminder_nudge": "Unrequested nudge to finish a paused form; discreet: no care, review, IRO or names",
    "something_went_wrong": "Reply when the service fails; the message is kept",
    "keywords_menu": "Words for MENU",
    "keywords_help": "Words for HELP",
    "keywords_back": "Words for BACK",
    "keywords_stop": "Words for STOP",
    "keywords_start": "Words for START",
    "keywords_language": "Words for LANGUAGE",
    "keywords_yes": "Words for yes",
    "keywords_no": "Words for no",
    "keywords_skip": "Words for SKIP (move past a question)",
    "keywords_not_sure": "Words for NOT SURE",
    "keywords_later": "Words for LATER (pause and keep the answers)",
    "keywords_carry_on": "Words for CARRY ON after pausing",
    "cannot_skip": "SKIP on a question that cannot be skipped",
    "paused": "Reply to LATER",
    "message_passed_on": "Thanks for words that answered no question; they went to staff",
    "office_closed": "Added to every thank-you when the office is closed",
    "sorry_to_hear": "A kind first reply to sad news",
    "word_yes": "How a yes answer is shown in a summary",
    "word_no": "How a no answer is shown in a summary",
    "word_not_sure": "How a not-sure answer is shown in a summary",
    "not_in_your_language": "Added to a message that is not translated into the child's language yet",
    "iro_changed": "Unasked: the child has a new IRO (1 shows who); discreet: no care, review, IRO, names",
}

FLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "start": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "nodes": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "properties": {"kind": {"enum": sorted(REGISTRY)}},
                "required": ["kind"],
            },
        },
    },
    "required": ["id", "title", "start", "nodes"],
    "additionalProperties": False,
}

MESSAGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        # Why a message may read above age 9 (shown by `flows check`), by message key.
        "reading_notes": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["messages"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow, located by file, node and line."""

    file: str
    line: int
    message: str
    node: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: node '{self.node}': {self.message}" if self.node else f"{where}: {self.message}"


class FlowDefinitionError(Exception):
    """A flow or messages file is broken; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Flow:
    """One version of a flow: its nodes, keyed by id, and where it starts."""

    id: str
    title: str
    start: str
    nodes: dict[str, NodeKind]
    version: str
    source: str
    data: dict[str, Any] = field(repr=False, default_factory=dict)
    description: str = ""

    def messages(self) -> list[MessageRef]:
        """Every translatable message in the flow, in file order."""
        return [m for node in self.nodes.values() for m in node.messages()]


@dataclass
class SystemMessages:
    """The messages the runtime and host use outside any flow (help, STOP, safety reply...)."""

    texts: dict[str, str]
    lines: dict[str, int]
    source: str
    notes: dict[str, str] = field(default_factory=dict)  # why a message may read above age 9

    CONTEXT_PREFIX = "system"

    def context(self, key: str) -> str:
        return f"{self.CONTEXT_PREFIX}.{key}"

    def messages(self) -> list[MessageRef]:
        return [
            MessageRef(
                self.context(key),
                text,
                self.lines.get(key, 0),
                comment=REQUIRED_MESSAGES.get(key, ""),
                is_keywords=key.startswith("keywords_"),
            )
            for key, text in self.texts.items()
        ]


@dataclass
class Library:
    """All flows a conversation can use, every version still in use, and the system messages."""

    flows: dict[str, Flow]
    messages: SystemMessages
    versions: dict[tuple[str, str], Flow] = field(default_factory=dict)
    entry: str = ENTRY_FLOW
    safeguarding: Any = None  # the triage PhraseBook from the flows folder's safeguarding/ files

    def __post_init__(self) -> None:
        for flow in self.flows.values():
            self.versions.setdefault((flow.id, flow.version), flow)

    def get(self, flow_id: str, version: str | None = None) -> Flow | None:
        """The given version of a flow if still held, else its current version."""
        if version and (flow_id, version) in self.versions:
            return self.versions[(flow_id, version)]
        return self.flows.get(flow_id)

    def all_messages(self) -> list[tuple[str, MessageRef]]:
        """Every translatable message with its source file."""
        found = [(self.messages.source, m) for m in self.messages.messages()]
        for flow in self.flows.values():
            found.extend((flow.source, m) for m in flow.messages())
        return found


class FlowLoader(yaml.SafeLoader):
    """YAML as people write flows: only ``true``/``false`` are booleans (YAML 1.2), so keys such
    as ``yes:`` and ``no:`` and values such as ``no`` stay words."""


FlowLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
FlowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(text: str) -> Any:
    """Parse YAML the way flows are parsed (see ``FlowLoader``)."""
    return yaml.load(text, Loader=FlowLoader)  # noqa: S506 - FlowLoader is a SafeLoader


def load_yaml_lines(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML and record the line of every mapping value and sequence item by its path."""
    try:
        data = read_yaml(text)
        root = yaml.compose(text, Loader=FlowLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(error, "problem", None) or str(error)
        raise FlowDefinitionError([Problem(source, line, f"this is not valid YAML: {problem}")]) from None
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node | None, path: tuple) -> None:
        if node is None:
            return
        lines.setdefault(path, node.start_mark.line + 1)  # a key's own line wins over its value's
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    lines[(*path, key.value)] = key.start_mark.line + 1
                    walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(root, ())
    return data, lines


def _schema_problems(
    data: Any,
    schema: dict[str, Any],
    lines: dict[tuple, int],
    source: str,
    node: str | None = None,
    prefix: tuple = (),
) -> list[Problem]:
    problems = []
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = (*prefix, *error.absolute_path)
        while path and path not in lines:
            path = path[:-1]
        where = ".".join(str(p) for p in error.absolute_path)
        message = error.message if not where else f"{where}: {error.message}"
        problems.append(Problem(source, lines.get(path, 1), message, node))
    return problems


def _version(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def parse_flow(text: str, source: str) -> Flow:
    """Parse and check one flow's YAML text; raise FlowDefinitionError naming file, node and line."""
    data, lines = load_yaml_lines(text, source)
    problems = _schema_problems(data, FLOW_SCHEMA, lines, source)
    if problems:
        raise FlowDefinitionError(problems)
    nodes: dict[str, NodeKind] = {}
    for node_id, node_data in data["nodes"].items():
        kind = REGISTRY[node_data["kind"]]
        node_problems = _schema_problems(
            node_data, kind.schema, lines, source, node_id, prefix=("nodes", node_id)
        )
        if node_problems:
            problems.extend(node_problems)
            continue
        node_lines = {path[2:]: line for path, line in lines.items() if path[:2] == ("nodes", node_id)}
        nodes[node_id] = kind(data["id"], node_id, node_data, node_lines)
    if problems:
        raise FlowDefinitionError(problems)
    flow = Flow(
        id=data["id"],
        title=data["title"],
        start=data["start"],
        nodes=nodes,
        version=_version(data),
        source=source,
        data=data,
        description=data.get("description", ""),
    )
    problems = check_flow(flow, lines.get(("start",), 1))
    if problems:
        raise FlowDefinitionError(problems)
    return flow


def check_flow(flow: Flow, start_line: int = 1) -> list[Problem]:
    """Structural checks within one flow: steps it leads to exist, every step is reachable, and
    variables are known. Links to other flows are checked by ``check_library``."""
    problems: list[Problem] = []
    if flow.start not in flow.nodes:
        problems.append(
            Problem(flow.source, start_line, f"the flow starts at '{flow.start}', which does not exist")
        )
    for node in flow.nodes.values():
        for target, line in node.targets():
            if not target.startswith("flow:") and target not in flow.nodes:
                message = f"leads to '{target}', which is not a step in this flow"
                problems.append(Problem(flow.source, line, message, node.id))
        for ref in node.messages():
            problems.extend(_variable_problems(flow.source, node.id, ref))
        variables = getattr(node, "variables", None)
        if variables:
            for name, line in variables():
                if name not in KNOWN_VARIABLES:
                    problems.append(
                        Problem(
                            flow.source,
                            line,
                            f"'{name}' is not a variable this service knows",
                            node.id,
                        )
                    )
    reachable = _reachable(flow)
    for node in flow.nodes.values():
        if node.id not in reachable:
            problems.append(
                Problem(flow.source, node.line, "no step leads here, so no one can reach it", node.id)
            )
    return problems


def _variable_problems(source: str, node_id: str | None, ref: MessageRef) -> list[Problem]:
    return [
        Problem(source, ref.line, f"'{{{name}}}' is not a variable this service knows", node_id)
        for name in placeholders(ref.text)
        if name not in KNOWN_VARIABLES
    ]


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        current = todo.pop()
        if current in seen or current not in flow.nodes:
            continue
        seen.add(current)
        todo.extend(t for t, _ in flow.nodes[current].targets() if not t.startswith("flow:"))
    return seen


def parse_messages(text: str, source: str) -> SystemMessages:
    """Parse the system messages file; every required message must be present."""
    data, lines = load_yaml_lines(text, source)
    problems = _schema_problems(data, MESSAGES_SCHEMA, lines, source)
    if problems:
        raise FlowDefinitionError(problems)
    texts: dict[str, str] = data["messages"]
    for key in REQUIRED_MESSAGES:
        if key not in texts:
            problems.append(Problem(source, lines.get(("messages",), 1), f"the message '{key}' is missing"))
    message_lines = {key: lines.get(("messages", key), 1) for key in texts}
    messages = SystemMessages(texts, message_lines, source, data.get("reading_notes", {}))
    for ref in messages.messages():
        problems.extend(_variable_problems(source, None, ref))
    if problems:
        raise FlowDefinitionError(problems)
    return messages


def check_library(library: Library) -> list[Problem]:
    """Checks across flows: targets in other flows exist, and the entry and language flows exist."""
    problems: list[Problem] = []
    flow_ids = set(library.flows)
    for required in (library.entry, LANGUAGE_FLOW):
        if required not in flow_ids:
            problems.append(Problem(library.messages.source, 1, f"there is no '{required}' flow"))
    for flow in library.flows.values():
        for node in flow.nodes.values():
            for target, line in node.targets():
                if not target.startswith("flow:"):
                    continue
                other, _, node_id = target[len("flow:") :].partition("/")
                if other not in flow_ids:
                    problems.append(
                        Problem(
                            flow.source,
                            line,
                            f"leads to the flow '{other}', which does not exist",
                            node.id,
                        )
                    )
                elif node_id and node_id not in library.flows[other].nodes:
                    problems.append(
                        Problem(
                            flow.source,
                            line,
                            f"leads to '{node_id}', which is not a step in the flow '{other}'",
                            node.id,
                        )
                    )
    return problems


def load_flow_file(path: Path, root: Path | None = None) -> Flow:
    """Load one flow file; its source is shown relative to ``root``."""
    source = str(path.relative_to(root)) if root else str(path)
    return parse_flow(path.read_text(encoding="utf-8"), source)


def load_library(directory: Path, root: Path | None = None) -> Library:
    """Load every flow in a folder and its messages file; raise with every problem found."""
    root = root or directory.parent
    problems: list[Problem] = []
    flows: dict[str, Flow] = {}
    messages: SystemMessages | None = None
    for path in sorted(directory.glob("*.yaml")):
        source = str(path.relative_to(root))
        try:
            if path.name == MESSAGES_FILE:
                messages = parse_messages(path.read_text(encoding="utf-8"), source)
                continue
            flow = load_flow_file(path, root)
        except FlowDefinitionError as error:
            problems.extend(error.problems)
            continue
        if flow.id in flows:
            problems.append(
                Problem(source, 1, f"the flow id '{flow.id}' is already used by {flows[flow.id].source}")
            )
            continue
        if flow.id != path.stem:
            problems.append(
                Problem(source, 1, f"the flow id '{flow.id}' should match the file name '{path.stem}'")
            )
        flows[flow.id] = flow
    if messages is None:
        problems.append(
            Problem(
                str(directory.relative_to(root) / MESSAGES_FILE),
                1,
                "the system messages file is missing",
            )
        )
    safeguarding = None  # the triage phrase files, one per locale, if the folder has them
    if (directory / "safeguarding").is_dir():
        from app.engine.triage import load_phrasebook  # here, because triage imports this module

        try:
            safeguarding = load_phrasebook(directory / "safeguarding", root)
        except FlowDefinitionError as error:
            problems.extend(error.problems)
    if problems:
        raise FlowDefinitionError(problems)
    assert messages is not None
    library = Library(flows=flows, messages=messages, safeguarding=safeguarding)
    problems = check_library(library)
    if problems:
        raise FlowDefinitionError(problems)
    return library
