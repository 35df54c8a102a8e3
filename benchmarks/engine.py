"""ENGINE: steps per second of the pure engine (``advance``) on the webhook's conversation mix.

One process, one thread, no database: the library is loaded once and every conversation starts
from a fresh state, as a new child's would. A step is one ``advance`` call (one inbound message).
Run alone: ``.venv/bin/python benchmarks/engine.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.engine import Context, Inbound, advance, load_library  # noqa: E402
from app.engine.runtime import ActionView, new_state  # noqa: E402
from app.flow_report import sample_variables  # noqa: E402

TARGET = 20_000

# What children send, conversation by conversation: the menus, my views (answers with SKIP,
# NOT SURE and BACK, the summary, a change, send), worries and concerns, my plan, rights, help,
# language. Each starts from a new child's state.
CONVERSATIONS: list[list[str]] = [
    ["hi", "1"],
    ["who is my iro"],
    [
        "hi",
        "2",
        "1",
        "it is ok where i live",
        "SKIP",
        "NOT SURE",
        "BACK",
        "school is fine mostly",
        "tired a lot",
        "SKIP",
        "more time with my mates",
        "football and my bike",
        "NOT SURE",
        "my sister",
        "SKIP",
        "after school please",
        "seeing my brother",
        "SKIP",
        "1",
        "yes",
        "2",
        "3",
        "not good",
        "1",
    ],
    ["hello", "2", "4", "no", "3"],
    ["hi", "4", "3", "i want to see my brother more, we live in different houses"],
    ["worry", "1"],
    ["hi", "4", "8", "my iro never calls me back"],
    ["my plan", "1"],
    ["hi", "3", "MENU"],
    ["hi", "5", "1", "1"],
    ["rights", "3", "2"],
    ["hi", "6"],
    ["hi", "7", "HELP", "BACK", "menu", "3", "1"],
    ["LANGUAGE", "2", "LANGUAGE", "1"],
]

ACTIONS = (
    ActionView(1, "Move to a school nearer home", "Social worker", "1 September 2026", "late"),
    ActionView(2, "See my brother every two weeks", "Social worker", "1 December 2026", "agreed"),
    ActionView(3, "Get a bike", "Carer", None, "done"),
)


def webhook_mix() -> tuple[dict[str, dict[str, list[str]]], dict[str, int], dict[str, float]] | None:
    """The webhook benchmark's conversations, weights and locale mix (None without ``webhook.py``)."""
    try:
        from benchmarks import webhook
    except ImportError:
        return None
    try:
        return webhook.CONVERSATIONS, webhook.WEIGHTS, dict(webhook.Settings().locale_mix)
    except AttributeError:
        return None


def children_scripts(
    children: int = 200, per_child: int = 60, seed: int = 7
) -> tuple[list[tuple[str, list[str]]], str]:
    """What each of ``children`` children sends (locale, texts), and where the mix came from.

    With ``benchmarks/webhook.py`` present this is its mix: each child holds conversation after
    conversation chosen by its weights, in its own language, keeping its state between them, as
    the webhook's children do. Without it, every conversation of ``CONVERSATIONS`` once each.
    """
    import random

    mix = webhook_mix()
    if mix is None:
        return [("en", list(conversation)) for conversation in CONVERSATIONS], "benchmarks/engine.py"
    conversations, weights, locales = mix
    total = sum(locales.values())
    scripts: list[tuple[str, list[str]]] = []
    for locale, share in locales.items():
        for n in range(round(children * share / total)):
            rng = random.Random(f"{seed}:{locale}:{n}")
            names = list(weights)
            texts: list[str] = []
            while len(texts) < per_child:
                texts += conversations.get(locale, conversations["en"])[
                    rng.choices(names, list(weights.values()))[0]
                ]
            scripts.append((locale, texts))
    return scripts, "benchmarks/webhook.py"


def contexts() -> dict[str, Context]:
    """A context per locale, as the host builds it (the child's facts, the catalog's translator)."""
    from app.i18n import Catalogs

    catalogs = Catalogs(ROOT / "locales")
    return {
        locale: Context(
            now=datetime(2026, 11, 23, 11, 0),
            locale=locale,
            variables=sample_variables(locale),
            translate=catalogs.translator(locale),
            actions=ACTIONS,
        )
        for locale in ("en", "cy")
    }


def steps_per_second(seconds: float = 3.0) -> tuple[float, int, str]:
    """Run the mix over and over for about ``seconds``; returns (steps per second, steps, mix source)."""
    library = load_library(ROOT / "flows")
    by_locale = contexts()
    scripts, source = children_scripts()
    work = [(by_locale[locale], [Inbound(text=text) for text in texts]) for locale, texts in scripts]

    def one_pass() -> int:
        done = 0
        for context, messages in work:
            state = new_state()
            for message in messages:
                state = advance(library, state, message, context).state
            done += len(messages)
        return done

    one_pass()  # first, so nothing lazily built on first use is counted
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += one_pass()
    return steps / (time.perf_counter() - start), steps, source


def triage_milliseconds_per_message(count: int = 4_000) -> float:
    """Safeguarding triage of a message with the previous one, as ``handle`` runs it."""
    from app.engine.triage import assess, load_phrasebook

    book = load_phrasebook(ROOT / "flows" / "safeguarding")
    messages = [
        "can i see my brother more we live in different houses, dont tell my carer yet",
        "who is my IRO",
        "i dont feel safe at home",
        "2",
        "my nan died last week",
    ]
    start = time.perf_counter()
    for i in range(count):
        assess(messages[i % len(messages)], previous="who is my IRO", book=book)
    return (time.perf_counter() - start) * 1000 / count


def run(quick: bool = False) -> list[dict]:
    """The engine figures as harness rows."""
    rate, steps, source = steps_per_second(1.0 if quick else 5.0)
    triage = triage_milliseconds_per_message(1_000 if quick else 4_000)
    return [
        {
            "figure": "engine: steps per second (one process, one thread)",
            "value": f"{rate:,.0f}",
            "target": f">= {TARGET:,}",
            "met": rate >= TARGET,
            "note": f"{steps:,} steps of the conversation mix in {source}",
        },
        {
            "figure": "safeguarding triage: ms per message (with the previous one)",
            "value": f"{triage:.3f} ms",
            "target": "(reported)",
            "met": None,
        },
    ]


def show(quick: bool) -> None:
    """Print the replies to each conversation of the mix (to check it goes where it should)."""
    from app.engine import render

    library = load_library(ROOT / "flows")
    context = Context(now=datetime(2026, 11, 23, 11, 0), variables=sample_variables("en"), actions=ACTIONS)
    for conversation in CONVERSATIONS:
        state = new_state()
        print("----")
        for line in conversation:
            step = advance(library, state, Inbound(text=line), context)
            state = step.state
            said = " / ".join(render(r, lambda c, m: m, context.variables)[:60] for r in step.replies)
            effects = ", ".join(type(e).__name__ for e in step.effects)
            print(f"> {line!r:40} {state['flow']}/{state['node']} {effects} | {said}")


if __name__ == "__main__":
    if "--show" in sys.argv:
        show(False)
    else:
        for row in run("--quick" in sys.argv):
            print(row)
