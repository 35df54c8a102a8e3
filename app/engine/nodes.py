"""Node kinds: one small class per kind, registered by its kind name.

The registry is the checklist: ``tests/engine/test_node_kinds.py`` fails for a registered kind
that has no test cases. Each class declares its schema (checked when a flow loads), the messages it
shows (for translation and SMS checks), where it can lead (for validation and the diagram), what
happens when the conversation arrives at it, and, for kinds that wait, what an answer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from app.engine.effects import (
    ActionNotHappened,
    AdvocateRequested,
    ConcernRaised,
    LocaleChanged,
    WishesSubmitted,
)

if TYPE_CHECKING:
    from app.engine.runtime import Run

TARGET_PATTERN = r"^(flow:[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)?|[a-z][a-z0-9_]*)$"
KEY_PATTERN = r"^[a-z][a-z0-9_.]*$"
_TARGET = {"type": "string", "pattern": TARGET_PATTERN}
_TEXT = {"type": "string", "minLength": 1}
_SAVE = {"type": "string", "pattern": KEY_PATTERN}


def node_schema(required: list[str], **properties: Any) -> dict[str, Any]:
    """The JSON schema of a node kind: its fields, which are required, and nothing else allowed."""
    return {
        "type": "object",
        # reading_note: why a message may read above age 9 (shown by `flows check`).
        "properties": {"kind": {}, "reading_note": {"type": "string"}, **properties},
        "required": required,
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Goto:
    """Move to another node (``name``), another flow (``flow:id``) or a node in it (``flow:id/name``)."""

    target: str


@dataclass(frozen=True)
class Wait:
    """Stop here until the child answers."""


@dataclass(frozen=True)
class End:
    """This conversation is finished."""


@dataclass(frozen=True)
class Retry:
    """The answer was not understood: ``message`` (a system message key) says how to answer."""

    message: str = "invalid_choice"
    params: tuple[tuple[str, str], ...] = ()


Transition = Goto | Wait | End | Retry


@dataclass(frozen=True)
class MessageRef:
    """One translatable message of a node: the gettext context, the English text and its line."""

    context: str
    text: str
    line: int
    comment: str = ""
    is_keywords: bool = False


REGISTRY: dict[str, type[NodeKind]] = {}


def register(cls: type[NodeKind]) -> type[NodeKind]:
    """Add a node kind to the registry under its ``kind`` name."""
    REGISTRY[cls.kind] = cls
    return cls


class NodeKind:
    """A step of a flow. Subclasses set ``kind`` and ``schema``."""

    kind: ClassVar[str] = ""
    schema: ClassVar[dict[str, Any]] = {}

    def __init__(self, flow_id: str, node_id: str, data: dict[str, Any], lines: dict[tuple, int]):
        self.flow_id = flow_id
        self.id = node_id
        self.data = data
        self._lines = lines
        self.line = lines.get((), 0)
        self.context = f"{flow_id}.{node_id}"

    def line_of(self, *path: Any) -> int:
        """The source line of a field of this node (the node's own line if unknown)."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self.line

    @property
    def text(self) -> str | None:
        return self.data.get("text")

    def messages(self) -> list[MessageRef]:
        """Every translatable message this node shows."""
        if self.text:
            return [MessageRef(self.context, self.text, self.line_of("text"))]
        return []

    def targets(self) -> list[tuple[str, int]]:
        """Where this node can lead, with the line that says so (SKIP's target included)."""
        found = self._targets()
        if "skip" in self.data:
            found.append((self.data["skip"], self.line_of("skip")))
        return found

    def _targets(self) -> list[tuple[str, int]]:
        return []

    def enter(self, run: Run) -> Transition:
        """What happens when the conversation arrives here."""
        raise NotImplementedError

    def receive(self, text: str, run: Run) -> Transition:
        """What an answer does (only for kinds that wait)."""
        raise NotImplementedError

    def prompt(self, run: Run) -> None:
        """Show this node's question again."""
        self.enter(run)

    def skip_target(self) -> str | None:
        """Where SKIP or NOT SURE leads from this question (None: it cannot be skipped)."""
        return self.data.get("skip")

    def save_key(self) -> str | None:
        """The answer key this question saves, if any."""
        return self.data.get("save")


@register
class Say(NodeKind):
    """Send a message, then move on."""

    kind = "say"
    schema = node_schema(["text", "next"], text=_TEXT, next=_TARGET)

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["next"], self.line_of("next"))]

    def enter(self, run: Run) -> Transition:
        run.say(self.context, self.data["text"])
        return Goto(self.data["next"])


@register
class Ask(NodeKind):
    """Ask a question with a free-text answer, save the answer, then move on."""

    kind = "ask"
    schema = node_schema(["text", "save", "next"], text=_TEXT, save=_SAVE, next=_TARGET, skip=_TARGET)

    def skip_target(self) -> str | None:
        return self.data.get("skip", self.data["next"])

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["next"], self.line_of("next"))]

    def enter(self, run: Run) -> Transition:
        run.say(self.context, self.data["text"])
        return Wait()

    def receive(self, text: str, run: Run) -> Transition:
        answer = text.strip()
        if not answer:
            return Retry("empty_answer")
        run.save(self.data["save"], answer)
        return Goto(self.data["next"])


@register
class Choice(NodeKind):
    """Offer numbered choices; accept the number, the label, a keyword or a near spelling."""

    kind = "choice"
    schema = node_schema(
        ["text", "choices"],
        text=_TEXT,
        save=_SAVE,
        skip=_TARGET,
        choices={
            "type": "array",
            "minItems": 1,
            "maxItems": 9,
            "items": {
                "type": "object",
                "properties": {
                    "label": _TEXT,
                    "goto": _TARGET,
                    "keywords": _TEXT,
                    "value": {"type": "string"},
                    "set_locale": {"type": "string", "pattern": r"^[a-z]{2,3}(_[A-Z]{2})?$"},
                },
                "required": ["label", "goto"],
                "additionalProperties": False,
            },
        },
    )

    @property
    def choices(self) -> list[dict[str, Any]]:
        return self.data["choices"]

    def messages(self) -> list[MessageRef]:
        found = super().messages()
        for index, choice in enumerate(self.choices):
            found.append(MessageRef(self.context, choice["label"], self.line_of("choices", index, "label")))
            if "keywords" in choice:
                found.append(
                    MessageRef(
                        f"{self.context}.keywords",
                        choice["keywords"],
                        self.line_of("choices", index, "keywords"),
                        comment="Words a child might type for this choice, separated by commas.",
                        is_keywords=True,
                    )
                )
        return found

    def _targets(self) -> list[tuple[str, int]]:
        return [(c["goto"], self.line_of("choices", i, "goto")) for i, c in enumerate(self.choices)]

    def enter(self, run: Run) -> Transition:
        run.say(
            self.context,
            self.data["text"],
            options=tuple((self.context, c["label"]) for c in self.choices),
        )
        return Wait()

    def pick(self, text: str, run: Run, within: bool = True) -> int | None:
        """The index of the choice the text means, or None (``within``: keywords inside a sentence count)."""

        def options() -> list[frozenset[str]]:
            found = []
            for choice in self.choices:
                phrases = run.phrases(self.context, choice["label"])
                if "keywords" in choice:
                    phrases |= run.keyword_phrases(f"{self.context}.keywords", choice["keywords"])
                found.append(phrases)
            return found

        return run.match(text, len(self.choices), options, within)

    def take(self, index: int, run: Run) -> Transition:
        """Act on the chosen option."""
        choice = self.choices[index]
        run.chosen.append(choice["label"])
        if "save" in self.data:
            run.save(self.data["save"], choice.get("value", choice["label"]))
        if "set_locale" in choice:
            run.emit(LocaleChanged(locale=choice["set_locale"]))
        return Goto(choice["goto"])

    def receive(self, text: str, run: Run) -> Transition:
        index = self.pick(text, run)
        if index is None:
            return Retry("invalid_choice", (("count", str(len(self.choices))),))
        return self.take(index, run)


@register
class Confirm(NodeKind):
    """Ask a yes-or-no question."""

    kind = "confirm"
    schema = node_schema(["text", "yes", "no"], text=_TEXT, save=_SAVE, yes=_TARGET, no=_TARGET, skip=_TARGET)

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["yes"], self.line_of("yes")), (self.data["no"], self.line_of("no"))]

    def enter(self, run: Run) -> Transition:
        run.say(self.context, self.data["text"])
        return Wait()

    def receive(self, text: str, run: Run) -> Transition:
        answer = run.match(
            text, 2, lambda: [run.command_phrases("keywords_yes"), run.command_phrases("keywords_no")]
        )
        if answer is None:
            return Retry("invalid_yes_no")
        value = "yes" if answer == 0 else "no"
        if "save" in self.data:
            run.save(self.data["save"], value)
        return Goto(self.data[value])


@register
class Branch(NodeKind):
    """Go one way or another on what the host knows (a variable is set) or an earlier answer."""

    kind = "branch"
    schema = node_schema(
        ["cases", "otherwise"],
        cases={
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "if_set": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
                    "if_answered": _SAVE,
                    "if_answer": {
                        "type": "object",
                        "properties": {"key": _SAVE, "equals": {"type": "string"}},
                        "required": ["key", "equals"],
                        "additionalProperties": False,
                    },
                    "goto": _TARGET,
                },
                "required": ["goto"],
                "oneOf": [
                    {"required": ["if_set"]},
                    {"required": ["if_answer"]},
                    {"required": ["if_answered"]},
                ],
                "additionalProperties": False,
            },
        },
        otherwise=_TARGET,
    )

    def variables(self) -> list[tuple[str, int]]:
        """Context variables this branch tests, for validation."""
        return [
            (c["if_set"], self.line_of("cases", i, "if_set"))
            for i, c in enumerate(self.data["cases"])
            if "if_set" in c
        ]

    def _targets(self) -> list[tuple[str, int]]:
        found = [(c["goto"], self.line_of("cases", i, "goto")) for i, c in enumerate(self.data["cases"])]
        return [*found, (self.data["otherwise"], self.line_of("otherwise"))]

    def enter(self, run: Run) -> Transition:
        for case in self.data["cases"]:
            if "if_set" in case and run.variable(case["if_set"]):
                return Goto(case["goto"])
            if "if_answered" in case and run.answer(case["if_answered"]):  # skipped ("") is not answered
                return Goto(case["goto"])
            if "if_answer" in case:
                wanted = case["if_answer"]
                if run.answer(wanted["key"]) == wanted["equals"]:
                    return Goto(case["goto"])
        return Goto(self.data["otherwise"])


@register
class Jump(NodeKind):
    """Go straight to another step or flow."""

    kind = "jump"
    schema = node_schema(["goto"], goto=_TARGET)

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["goto"], self.line_of("goto"))]

    def enter(self, run: Run) -> Transition:
        return Goto(self.data["goto"])


@register
class Finish(NodeKind):
    """End the conversation, with an optional last message."""

    kind = "end"
    schema = node_schema([], text=_TEXT)

    def enter(self, run: Run) -> Transition:
        if self.text:
            run.say(self.context, self.text)
        return End()


_ROW = {"type": "string", "minLength": 1}


@register
class Record(NodeKind):
    """Record something for staff (a concern, an advocate request, wishes, an action not done)."""

    kind = "record"
    schema = node_schema(
        ["effect", "next"],
        effect={"enum": ["concern", "advocate_requested", "wishes_submitted", "action_not_happened"]},
        category={"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        category_from=_SAVE,
        urgent={"type": "boolean"},
        route={"enum": ["iro", "manager"]},
        detail_from=_SAVE,
        answers_from={"type": "string", "pattern": r"^[a-z][a-z0-9_]*\.$"},
        private={"type": "array", "items": _SAVE},
        action_from=_SAVE,
        next=_TARGET,
    )

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["next"], self.line_of("next"))]

    def enter(self, run: Run) -> Transition:
        data = self.data
        effect = data["effect"]
        if effect == "concern":
            detail = run.answer(data["detail_from"]) if "detail_from" in data else None
            run.emit(
                ConcernRaised(
                    urgent=data.get("urgent", False),
                    category=run.answer(data.get("category_from", "")) or data.get("category", "general"),
                    route=data.get("route", "iro"),
                    detail=detail or "",
                )
            )
        elif effect == "advocate_requested":
            run.emit(AdvocateRequested())
        elif effect == "wishes_submitted":
            prefix = data.get("answers_from", "wishes.")
            answers = tuple(sorted((k, v) for k, v in run.state["answers"].items() if k.startswith(prefix)))
            given = {k for k, _ in answers}
            private = tuple(k for k in data.get("private", []) if k in given)
            run.emit(WishesSubmitted(answers=answers, private=private))
            run.forget(prefix)
        elif effect == "action_not_happened":
            chosen = run.answer(data.get("action_from", "plan.action"))
            run.emit(ActionNotHappened(action_id=int(chosen) if chosen and chosen.isdigit() else None))
        return Goto(data["next"])


@register
class Summary(Choice):
    """Show the answers so far (each with its label), then offer choices such as send or change."""

    kind = "summary"
    schema = node_schema(
        ["text", "items", "choices"],
        text=_TEXT,
        items={
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"key": _SAVE, "label": _TEXT, "node": {"type": "string"}},
                "required": ["key", "label", "node"],
                "additionalProperties": False,
            },
        },
        choices=Choice.schema["properties"]["choices"],
        save=_SAVE,
        skip=_TARGET,
    )

    @property
    def items(self) -> list[dict[str, Any]]:
        return self.data["items"]

    def messages(self) -> list[MessageRef]:
        found = super().messages()
        for index, item in enumerate(self.items):
            found.append(MessageRef(self.context, item["label"], self.line_of("items", index, "label")))
        return found

    def _shown(self, run: Run, item: dict[str, Any]) -> tuple[str, str]:
        """An answer as the child should read it: (text, context if the text is a message to translate)."""
        answer = run.answer(item["key"]) or ""
        messages = run.library.messages
        if not answer:
            return "-", ""
        if answer == "not sure":
            return messages.texts["word_not_sure"], messages.context("word_not_sure")
        node = run.flow().nodes.get(item["node"])
        if isinstance(node, Choice):
            for choice in node.choices:
                if answer in (choice.get("value"), choice["label"]):
                    return choice["label"], node.context
        if isinstance(node, Confirm) and answer in ("yes", "no"):
            key = f"word_{answer}"
            return messages.texts[key], messages.context(key)
        return answer, ""

    def _targets(self) -> list[tuple[str, int]]:
        found = super()._targets()
        found += [(item["node"], self.line_of("items", i, "node")) for i, item in enumerate(self.items)]
        return found

    def enter(self, run: Run) -> Transition:
        # A question the child never reached is left out; a skipped one shows as "-".
        rows = tuple(
            (self.context, item["label"], (), *self._shown(run, item))
            for item in self.items
            if run.answer(item["key"]) is not None
        )
        run.say(
            self.context,
            self.data["text"],
            options=tuple((self.context, c["label"]) for c in self.choices),
            rows=rows,
        )
        return Wait()


@register
class Change(NodeKind):
    """Ask which answer of a summary to change; after the new answer, show the summary again."""

    kind = "change"
    schema = node_schema(["text", "summary"], text=_TEXT, summary={"type": "string"})

    def _summary(self, run: Run) -> Summary:
        node = run.flow().nodes[self.data["summary"]]
        assert isinstance(node, Summary)
        return node

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["summary"], self.line_of("summary"))]

    def enter(self, run: Run) -> Transition:
        summary = self._summary(run)
        run.say(
            self.context,
            self.data["text"],
            options=tuple((summary.context, i["label"]) for i in summary.items),
        )
        return Wait()

    def receive(self, text: str, run: Run) -> Transition:
        summary = self._summary(run)
        index = run.match(
            text,
            len(summary.items),
            lambda: [run.phrases(summary.context, i["label"]) for i in summary.items],
        )
        if index is None:
            return Retry("invalid_choice", (("count", str(len(summary.items))),))
        item_node = summary.items[index]["node"]
        run.state["return_to"] = [run.state["flow"], run.state["version"], summary.id, item_node]
        return Goto(item_node)


ACTION_STATUSES = ("agreed", "awaiting_manager", "done", "late")


@register
class Actions(NodeKind):
    """List the actions from the child's last review with who, by when and status; pick one."""

    kind = "actions"
    schema = node_schema(
        ["text", "empty_text", "rows", "save", "next", "none"],
        text=_TEXT,
        empty_text=_TEXT,
        rows={
            "type": "object",
            "properties": {status: _ROW for status in ACTION_STATUSES},
            "required": list(ACTION_STATUSES),
            "additionalProperties": False,
        },
        save=_SAVE,
        next=_TARGET,
        none=_TARGET,
    )

    def messages(self) -> list[MessageRef]:
        found = super().messages()
        found.append(MessageRef(self.context, self.data["empty_text"], self.line_of("empty_text")))
        for status in ACTION_STATUSES:
            found.append(
                MessageRef(
                    self.context,
                    self.data["rows"][status],
                    self.line_of("rows", status),
                    comment="One action of the plan: {what} is the action, {who} who does it, {due} by when.",
                )
            )
        return found

    def _targets(self) -> list[tuple[str, int]]:
        return [(self.data["next"], self.line_of("next")), (self.data["none"], self.line_of("none"))]

    def enter(self, run: Run) -> Transition:
        actions = run.context.actions
        if not actions:
            run.say(self.context, self.data["empty_text"])
            return Goto(self.data["none"])
        rows = tuple(
            (
                self.context,
                self.data["rows"][action.status],
                (("what", action.what), ("who", action.who), ("due", action.due or "-")),
                "",
                "",
            )
            for action in actions
        )
        run.say(self.context, self.data["text"], rows=rows, numbered=True)
        return Wait()

    def receive(self, text: str, run: Run) -> Transition:
        actions = run.context.actions
        index = run.match(text, len(actions), lambda: [{action.what} for action in actions])
        if index is None:
            return Retry("invalid_choice", (("count", str(len(actions))),))
        run.save(self.data["save"], str(actions[index].id))
        return Goto(self.data["next"])
