"""Effects: what a conversation step asks the host to do for staff. Returned, never performed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Effect:
    """Base class; ``kind`` is exactly the string in CONTRACT.md, so it serialises with no mapping."""

    kind: ClassVar[str] = ""

    def as_dict(self) -> dict[str, Any]:
        """The effect as JSON-ready data (tuples as lists), with its kind first."""
        return {"kind": self.kind, **_json_ready(asdict(self))}


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class ConcernRaised(Effect):
    """A concern for the child's reviewing officer; ``urgent`` puts it in the safeguarding queue."""

    kind: ClassVar[str] = "concern"
    urgent: bool = False
    category: str = "general"
    reasons: tuple[str, ...] = field(default_factory=tuple)
    # Who should act: "iro", or "manager" for a concern about the reviewing officer.
    route: str = "iro"
    detail: str = ""


@dataclass(frozen=True)
class WishesSubmitted(Effect):
    """The child confirmed their wishes and feelings for the next review."""

    kind: ClassVar[str] = "wishes_submitted"
    answers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    private: tuple[str, ...] = field(default_factory=tuple)  # keys only the reviewing officer sees


@dataclass(frozen=True)
class AdvocateRequested(Effect):
    """The child asked for an advocate."""

    kind: ClassVar[str] = "advocate_requested"


@dataclass(frozen=True)
class ActionNotHappened(Effect):
    """The child said an action from their review has not happened."""

    kind: ClassVar[str] = "action_not_happened"
    action_id: int | None = None


@dataclass(frozen=True)
class OptedOut(Effect):
    """The child asked for no more messages (STOP)."""

    kind: ClassVar[str] = "opted_out"


@dataclass(frozen=True)
class OptedIn(Effect):
    """The child asked for messages again (START)."""

    kind: ClassVar[str] = "opted_in"


@dataclass(frozen=True)
class LocaleChanged(Effect):
    """The child chose another language."""

    kind: ClassVar[str] = "locale_changed"
    locale: str = "en"


EFFECT_KINDS: tuple[type[Effect], ...] = (
    ConcernRaised,
    WishesSubmitted,
    AdvocateRequested,
    ActionNotHappened,
    OptedOut,
    OptedIn,
    LocaleChanged,
)
