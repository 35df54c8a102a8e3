"""The pure conversation engine: flow definitions, the runtime that advances them, triage, SMS text.

This package does no I/O. It imports nothing from Flask, SQLAlchemy, any channel or any other
``app.`` module, and never reads the clock, a random source or the network: the host passes in
everything it needs (the flow library, the saved state, the inbound text and a read-only context
that carries the time). ``tests/engine/test_purity.py`` enforces this by parsing every module here.

The whole contract is one function::

    advance(library, state, inbound, context) -> Step(state, replies, effects, path)

Replies are message ids plus parameters, rendered in the child's locale by ``render``; effects are
frozen dataclasses that say what should happen for staff, never performed here.
"""

from app.engine.definition import (
    Flow,
    FlowDefinitionError,
    Library,
    Problem,
    load_flow_file,
    load_library,
    parse_flow,
)
from app.engine.effects import (
    ActionNotHappened,
    AdvocateRequested,
    ConcernRaised,
    Effect,
    LocaleChanged,
    OptedIn,
    OptedOut,
    WishesSubmitted,
)
from app.engine.runtime import (
    MAX_STEPS,
    Context,
    FlowRuntimeError,
    Inbound,
    Reply,
    Step,
    advance,
    choices,
    render,
)

__all__ = [
    "MAX_STEPS",
    "ActionNotHappened",
    "AdvocateRequested",
    "ConcernRaised",
    "Context",
    "Effect",
    "Flow",
    "FlowDefinitionError",
    "FlowRuntimeError",
    "Inbound",
    "Library",
    "LocaleChanged",
    "OptedIn",
    "OptedOut",
    "Problem",
    "Reply",
    "Step",
    "WishesSubmitted",
    "advance",
    "load_flow_file",
    "load_library",
    "parse_flow",
    "choices",
    "render",
]
