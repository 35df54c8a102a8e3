"""Effects: what a conversation step asks the host to do for staff. Returned, never performed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Effect:
    """Base class; ``kind`` is exactly the string in CONTRACT.md, so it serialises with no mapping."""

    kind: ClassVar[str] = ""

    def as_dict(self) -> dict[str, Any]:
        """The effect as JSON-ready data, with its kind first."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ConcernRaised(Effect):
    """A concern for the child's reviewing officer; ``urgent`` puts it in the safeguarding queue."""

    kind: ClassVar[str] = "concern"
    urgent: bool = False
    category: str = "general"
    reasons: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class WishesSubmitted(Effect):
    """The child confirmed their wishes and feelings for the next review."""

    kind: ClassVar[str] = "wishes_submitted"
    answers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


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
