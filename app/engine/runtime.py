"""The runtime: ``advance`` moves a conversation one inbound message forward.

State is plain JSON-ready data::

    {"flow": "main_menu", "version": "3f2a...", "node": "menu",   # None when idle
     "answers": {"key": "value"},
     "history": [[flow, version, node], ...],   # questions answered, for BACK
     "stack": [[flow, version, node, len(history)], ...]}  # where to return after LANGUAGE

Global commands (MENU, HELP, BACK, STOP, START, LANGUAGE) work at every step and are understood in
the child's language and in English. Nothing here performs I/O; the host renders the replies and
applies the effects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.engine.definition import LANGUAGE_FLOW, Flow, Library, SystemMessages
from app.engine.effects import ConcernRaised, Effect, OptedIn, OptedOut
from app.engine.nodes import Choice, End, Goto, NodeKind, Retry, Wait
from app.engine.text import (
    KeywordForms,
    fill,
    keyword_forms,
    match_option,
    normalise,
    strip_accents,
    typed_number,
)

MAX_STEPS = 100

COMMANDS = (
    "stop",
    "start",
    "help",
    "menu",
    "back",
    "language",
    "skip",
    "not_sure",
    "later",
    "carry_on",
)
# (command, its keywords' system message, that message's gettext context)
_COMMAND_MESSAGES = tuple(
    (name, f"keywords_{name}", f"{SystemMessages.CONTEXT_PREFIX}.keywords_{name}") for name in COMMANDS
)
WHILE_WAITING = {"skip", "not_sure", "later"}
NOT_SURE = "not sure"
SKIPPED = ""  # an answer key that was asked and skipped (a key never asked has no answer at all)
FREE_TEXT_WORDS = 3
SHORT_REQUEST_WORDS = 5


def is_free_text(text: str) -> bool:
    """Words that look like something the child wants to say, not a mistyped choice."""
    return len(normalise(text).split()) >= FREE_TEXT_WORDS


def _identity(context: str, msgid: str) -> str:
    return msgid


@dataclass(frozen=True)
class Inbound:
    """What happened: the child sent ``text``, or (``timeout``) they left a question unanswered."""

    text: str = ""
    timeout: bool = False


@dataclass(frozen=True)
class ActionView:
    """One action from the child's last review, as the host found it (status "late" is derived)."""

    id: int
    what: str
    who: str
    due: str | None
    status: str  # agreed, awaiting_manager, done or late


@dataclass(frozen=True)
class Context:
    """Read-only facts from the host. The clock is here so the engine never reads it.

    The engine reads ``variables`` one name at a time (never lists them) and ``actions`` only in
    a step that shows the plan, so a host may pass mappings that look a fact up on first read:
    most messages need none of them."""

    now: datetime
    locale: str = "en"
    variables: Mapping[str, str | None] = field(default_factory=dict)
    translate: Callable[[str, str], str] = _identity
    actions: Sequence[ActionView] = ()


@dataclass(frozen=True)
class Reply:
    """A message to send: its gettext context and English text, parameters, numbered options."""

    context: str
    msgid: str
    params: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    # Lines after the text: (context, msgid, params, value, value_context) rendered as "text" or
    # "text: value"; with a value_context the value is itself a message (e.g. a choice's label).
    rows: tuple[tuple[str, str, tuple[tuple[str, str], ...], str, str], ...] = ()
    numbered: bool = False  # number the rows (1, 2, ...) so the child can pick one


@dataclass(frozen=True)
class Step:
    """The result of one ``advance``: the new state, replies to send, effects, nodes visited."""

    state: dict[str, Any]
    replies: tuple[Reply, ...]
    effects: tuple[Effect, ...]
    path: tuple[str, ...]
    chosen: tuple[str, ...] = ()  # English labels of choices taken, for triage of structured answers


class FlowRuntimeError(Exception):
    """A flow cannot continue: it loops, or leads to a step that does not exist."""


def new_state() -> dict[str, Any]:
    """The state of a child who has not started any conversation."""
    return {
        "flow": None,
        "version": None,
        "node": None,
        "answers": {},
        "history": [],
        "stack": [],
        "paused": None,
        "return_to": None,
    }


def pause(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state after LATER: the question the child is on is kept for CARRY ON; they are idle."""
    paused = _copy_state(state)
    if paused["node"]:
        paused["paused"] = [paused["flow"], paused["version"], paused["node"]]
    paused.update(flow=None, version=None, node=None, history=[], stack=[])
    return paused


def _copy_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A working copy of the state (its parts are flat: strings, a dict of strings, lists of lists)."""
    copied = {**new_state(), **state}
    copied["answers"] = dict(copied["answers"])
    copied["history"] = [list(p) for p in copied["history"]]
    copied["stack"] = [list(p) for p in copied["stack"]]
    return copied


class Values:
    """The names a text may use: parameters first, then the host's variables, empty ones left out.

    Names are read one at a time, as a text uses them, and never listed: the host's ``variables``
    may be a mapping that works a fact out on first read, so a reply that names no reviewing
    officer never looks one up."""

    __slots__ = ("_params", "_variables")

    def __init__(self, variables: Mapping[str, str | None], *params: Mapping[str, str]):
        self._variables = variables
        self._params = params

    def get(self, name: str, default: str | None = None) -> str | None:
        for params in self._params:
            if name in params:
                return params[name]
        value = self._variables.get(name)
        return value if value else default

    def with_params(self, params: tuple[tuple[str, str], ...]) -> Values:
        return Values(self._variables, dict(params), *self._params) if params else self


def _values(reply: Reply, variables: Mapping[str, str | None]) -> Values:
    return Values(variables, dict(reply.params))


def _rows(reply: Reply, translate: Callable[[str, str], str], values: Values) -> list[str]:
    rows = []
    for context, msgid, params, value, value_context in reply.rows:
        row = fill(translate(context, msgid), values.with_params(params))
        value = fill(translate(value_context, value), values) if value_context else value
        rows.append(f"{row}: {value}" if value else row)
    return rows


def render(reply: Reply, translate: Callable[[str, str], str], variables: Mapping[str, str | None]) -> str:
    """The text of a reply in the locale ``translate`` serves, with variables, rows and options."""
    values = _values(reply, variables)
    lines = [fill(translate(reply.context, reply.msgid), values)]
    for number, row in enumerate(_rows(reply, translate, values), 1):
        lines.append(f"{number} {row}" if reply.numbered else row)
    for number, label in choices(reply, translate, variables, rows=False):
        lines.append(f"{number} {label}")
    return "\n".join(lines)


def choices(
    reply: Reply,
    translate: Callable[[str, str], str],
    variables: Mapping[str, str | None],
    rows: bool = True,
) -> list[tuple[str, str]]:
    """The numbered choices a reply offers, as (number, label): options, or numbered rows.

    Channels with buttons (Telegram) show these as buttons; pressing one sends its number.
    """
    values = _values(reply, variables)
    if reply.options:
        return [
            (str(number), fill(translate(context, label), values))
            for number, (context, label) in enumerate(reply.options, 1)
        ]
    if rows and reply.numbered:
        return [(str(number), row) for number, row in enumerate(_rows(reply, translate, values), 1)]
    return []


class Run:
    """One call of ``advance``: the working state and what it has produced so far."""

    def __init__(self, library: Library, state: Mapping[str, Any], context: Context):
        self.library = library
        self.context = context
        self.state: dict[str, Any] = _copy_state(state)
        self.replies: list[Reply] = []
        self.effects: list[Effect] = []
        self.path: list[str] = []
        self.chosen: list[str] = []
        self.steps = 0
        self._variables = Values(context.variables)

    # -- what nodes call ------------------------------------------------------------------
    def say(
        self,
        context: str,
        msgid: str,
        options: tuple[tuple[str, str], ...] = (),
        rows: tuple[tuple[str, str, tuple[tuple[str, str], ...], str, str], ...] = (),
        numbered: bool = False,
        **params: str,
    ) -> None:
        """Queue a reply."""
        self.replies.append(Reply(context, msgid, tuple(sorted(params.items())), options, rows, numbered))

    def system(self, key: str, **params: str) -> None:
        """Queue one of the system messages."""
        messages = self.library.messages
        self.say(messages.context(key), messages.texts[key], **params)

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def save(self, key: str, value: str) -> None:
        self.state["answers"][key] = value

    def forget(self, prefix: str) -> None:
        """Drop every answer whose key starts with ``prefix`` (e.g. after they were sent)."""
        self.state["answers"] = {k: v for k, v in self.state["answers"].items() if not k.startswith(prefix)}

    def pass_on(self, text: str) -> None:
        """Free text that answers no question still reaches staff: a concern, and a thank-you."""
        self.emit(ConcernRaised(category="message", detail=text))
        self.system("message_passed_on")

    def answer(self, key: str) -> str | None:
        return self.state["answers"].get(key)

    def variable(self, name: str) -> str | None:
        return self._variables.get(name)

    def phrases(self, context: str, msgid: str) -> frozenset[str]:
        """A message as the child may type it: in their language and in English."""
        return frozenset(
            (fill(self.context.translate(context, msgid), self._variables), fill(msgid, self._variables))
        )

    def keyword_phrases(self, context: str, msgid: str) -> frozenset[str]:
        """Comma-separated keywords in the child's language and in English."""
        return self.keyword_forms(context, msgid).phrases

    def keyword_forms(self, context: str, msgid: str) -> KeywordForms:
        """Comma-separated keywords in the child's language and in English, with and without accents."""
        translated = fill(self.context.translate(context, msgid), self._variables)
        return keyword_forms(translated, fill(msgid, self._variables))

    def command_phrases(self, key: str) -> frozenset[str]:
        messages = self.library.messages
        return self.keyword_phrases(messages.context(key), messages.texts[key])

    def match(
        self,
        text: str,
        count: int,
        options: Callable[[], Sequence[Iterable[str]]],
        within: bool = True,
    ) -> int | None:
        """The index of the option of ``count`` the text means (see ``match_option``), or None.

        ``options`` gives each option's phrases; a bare number ("2") needs none of them."""
        number = typed_number(text)
        if number is not None:
            return number - 1 if 1 <= number <= count else None
        return match_option(text, options(), within=within)

    # -- moving around --------------------------------------------------------------------
    def position(self) -> list[Any]:
        return [self.state["flow"], self.state["version"], self.state["node"]]

    def flow(self) -> Flow:
        flow = self.library.get(self.state["flow"], self.state["version"])
        if flow is None:
            raise FlowRuntimeError(f"the flow '{self.state['flow']}' does not exist")
        return flow

    def node(self) -> NodeKind:
        flow = self.flow()
        node = flow.nodes.get(self.state["node"])
        if node is None:
            raise FlowRuntimeError(f"the flow '{flow.id}' has no step '{self.state['node']}'")
        return node

    def is_waiting(self) -> bool:
        return self.state["node"] is not None

    def set_position(self, position: Sequence[Any]) -> None:
        self.state["flow"], self.state["version"], self.state["node"] = position

    def go(self, target: str) -> None:
        """Move to a target: ``node``, ``flow:id`` (its start) or ``flow:id/node``."""
        if target.startswith("flow:"):
            flow_id, _, node_id = target[len("flow:") :].partition("/")
            flow = self.library.get(flow_id)
            if flow is None:
                raise FlowRuntimeError(f"leads to the flow '{flow_id}', which does not exist")
            self.set_position([flow.id, flow.version, node_id or flow.start])
        else:
            self.state["node"] = target

    def idle(self) -> None:
        self.state.update(flow=None, version=None, node=None, history=[], stack=[])

    def run(self) -> None:
        """Enter nodes from the current position until one waits for an answer or the flow ends."""
        while True:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise FlowRuntimeError(
                    f"stopped after {MAX_STEPS} steps without waiting for an answer: "
                    f"the flow '{self.state['flow']}' loops at '{self.state['node']}'"
                )
            node = self.node()
            self.path.append(f"{node.flow_id}.{node.id}")
            transition = node.enter(self)
            if isinstance(transition, Goto):
                self.go(transition.target)
            elif isinstance(transition, Wait):
                return
            elif isinstance(transition, End):
                if self.state["stack"]:
                    # Back to the question the child left (e.g. for LANGUAGE); BACK from there
                    # should not lead into the flow they just finished.
                    flow_id, version, node_id, history_length = self.state["stack"].pop()
                    self.set_position([flow_id, version, node_id])
                    del self.state["history"][history_length:]
                    continue
                self.idle()
                return

    def answered(self, transition: Any, node: NodeKind, text: str = "") -> None:
        """Act on what a waiting node did with an answer."""
        if isinstance(transition, Retry):
            if transition.message != "empty_answer" and is_free_text(text):
                # Words that answer no choice are still a message for staff, never dropped.
                self.pass_on(text)
            else:
                self.system(transition.message, **dict(transition.params))
            node.prompt(self)
            return
        self.state["history"].append(self.position())
        if isinstance(transition, Goto):
            self.follow(transition.target)
        elif isinstance(transition, End):
            self.idle()

    def follow(self, target: str) -> None:
        """Move on after an answer: to the target, or back to the summary the child came from."""
        back = self.state.get("return_to")
        if back and back[3] == self.state["node"] and back[0] == self.state["flow"]:
            # The child changed one answer from the summary: show the summary again.
            self.state["return_to"] = None
            self.set_position(back[:3])
        else:
            self.go(target)
        self.run()

    def start(self, flow_id: str, text: str = "") -> None:
        """Start a flow (or resume it where the child paused); a first answer in ``text`` is taken."""
        paused = self.state.get("paused")
        if paused and paused[0] == flow_id:
            self.resume()
            return
        self.go(f"flow:{flow_id}")
        before = len(self.replies)
        self.run()
        if not (text and self.is_waiting()):
            return
        node = self.node()
        if isinstance(node, Choice):
            # A long message ("can you tell my IRO I got a new job") is something to pass on, not
            # a menu choice just because it contains a keyword; a short one ("who is my iro") is.
            index = node.pick(text, self, within=len(normalise(text).split()) <= SHORT_REQUEST_WORDS)
            if index is not None:
                del self.replies[before:]
                self.answered(node.take(index, self), node)
                return
        if flow_id == self.library.entry and is_free_text(text):
            del self.replies[before:]
            self.pass_on(text)
            self.node().prompt(self)

    def resume(self) -> None:
        """Go back to the question the child paused on, with their answers as they left them."""
        self.set_position(self.state["paused"])
        self.state["paused"] = None
        self.system("resume")
        self.run()

    def skip(self, not_sure: bool) -> None:
        """SKIP or NOT SURE: move past the question (NOT SURE is saved as the answer)."""
        node = self.node()
        target = node.skip_target()
        if target is None:
            self.system("cannot_skip")
            node.prompt(self)
            return
        key = node.save_key()
        if key:
            self.save(key, NOT_SURE if not_sure else SKIPPED)
        self.state["history"].append(self.position())
        self.follow(target)

    # -- global commands ------------------------------------------------------------------
    def command(self, text: str) -> str | None:
        """The global command the whole message is, if any (some only mean something mid-question)."""
        said = normalise(text)
        if not said:
            return None
        plain = strip_accents(said)
        waiting, paused = self.is_waiting(), self.state.get("paused")
        texts, translate, values = self.library.messages.texts, self.context.translate, self._variables
        for name, key, context in _COMMAND_MESSAGES:
            if (name in WHILE_WAITING and not waiting) or (name == "carry_on" and not paused):
                continue
            msgid = texts[key]
            words = keyword_forms(fill(translate(context, msgid), values), fill(msgid, values))
            if said in words.phrases or plain in words.plain:
                return name
        return None

    def do_command(self, name: str, text: str) -> None:
        if name == "stop":
            self.emit(OptedOut())
            self.system("opted_out")
            self.idle()
        elif name == "start":
            self.emit(OptedIn())
            self.system("opted_in")
        elif name == "help":
            self.system("help")
            if self.is_waiting():
                self.node().prompt(self)
        elif name == "menu":
            self.idle()
            self.start(self.library.entry)
        elif name == "back":
            if self.state["history"]:
                self.set_position(self.state["history"].pop())
                self.run()
            else:
                self.system("nothing_to_go_back_to")
                if self.is_waiting():
                    self.node().prompt(self)
                else:
                    self.start(self.library.entry)
        elif name == "language":
            # Remember the question to come back to, unless the child is already choosing a language.
            if self.is_waiting() and self.state["flow"] != LANGUAGE_FLOW:
                self.state["stack"].append([*self.position(), len(self.state["history"])])
            self.start(LANGUAGE_FLOW, text)
        elif name in ("skip", "not_sure"):
            self.skip(not_sure=name == "not_sure")
        elif name == "later":
            self.state = pause(self.state)
            self.system("paused")
        elif name == "carry_on":
            self.idle()
            self.resume()


def recognise_command(library: Library, text: str, context: Context) -> str | None:
    """The global command a whole message is (e.g. "start"), without advancing anything."""
    return Run(library, new_state(), context).command(text)


def advance(library: Library, state: Mapping[str, Any], inbound: Inbound, context: Context) -> Step:
    """Move a conversation forward by one inbound message (or timeout). Pure: no I/O, no clock."""
    run = Run(library, state, context)
    if run.is_waiting():
        try:
            run.node()
        except FlowRuntimeError:
            # The flow changed under a waiting child (a step was removed): start again cleanly.
            run.idle()
    if inbound.timeout:
        if run.is_waiting():
            run.system("resume")
            run.node().prompt(run)
    else:
        command = run.command(inbound.text)
        if command:
            run.do_command(command, inbound.text)
        elif run.is_waiting():
            node = run.node()
            run.path.append(f"{node.flow_id}.{node.id}")
            run.answered(node.receive(inbound.text, run), node, inbound.text)
        else:
            run.start(library.entry, inbound.text)
    return Step(run.state, tuple(run.replies), tuple(run.effects), tuple(run.path), tuple(run.chosen))


def begin(library: Library, state: Mapping[str, Any], flow_id: str, context: Context) -> Step:
    """Start a flow at its first step, whatever the conversation was doing (the editor's preview)."""
    run = Run(library, state, context)
    run.idle()
    run.start(flow_id)
    return Step(run.state, tuple(run.replies), tuple(run.effects), tuple(run.path), tuple(run.chosen))
