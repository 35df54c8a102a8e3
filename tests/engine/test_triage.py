"""Safeguarding triage: what must be urgent, what must not be, and how the text is read."""

from __future__ import annotations

import ast
import dataclasses
import random
import string
import sys
from pathlib import Path

import pytest

from app.engine import triage
from app.engine.definition import FlowDefinitionError, load_library
from app.engine.triage import CATEGORIES, PhraseBook, Triage, load_phrasebook, parse_phrasebook

FLOWS = Path(__file__).resolve().parents[2] / "flows"
BOOK = load_phrasebook(FLOWS / "safeguarding", root=FLOWS.parent)
PHRASES = BOOK.phrases
NOT_RISK = BOOK.not_risk

ZW = "\u200b"  # zero-width space
ZWJ = "\u200d"  # zero-width joiner
SHY = "\u00ad"  # soft hyphen


def assess(text: str, previous: str | None = None) -> Triage:
    """Triage with the repository's phrase book."""
    return triage.assess(text, previous, book=BOOK)


def _sample(phrase: str) -> str:
    """The plainest message a list phrase stands for: first choice of each word, gaps empty."""
    words = [slot.split("/")[0] for slot in phrase.split() if slot != "..."]
    return " ".join("12" if word == "#" else word for word in words)


# --- the shape of the answer --------------------------------------------------------------------


def test_a_verdict_is_a_frozen_record_of_urgency_category_and_reasons() -> None:
    verdict = assess("he hit me")
    assert verdict == Triage(True, "abuse", ("hit/hits/hitting/hitted me/us",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.urgent = False  # type: ignore[misc]


def test_an_everyday_message_is_not_urgent_and_has_no_category_or_reasons() -> None:
    assert assess("when is my next review") == Triage(False, None, ())


def test_an_empty_or_blank_message_is_not_urgent() -> None:
    assert assess("") == Triage(False, None, ())
    assert assess("   \n\t", previous="   ") == Triage(False, None, ())


def test_every_category_in_the_lists_is_a_known_category_and_each_has_phrases() -> None:
    assert set(PHRASES) == set(CATEGORIES)
    assert set(CATEGORIES) == {
        "suicide",
        "self_harm",
        "abuse",
        "hurt",
        "missing",
        "exploitation",
        "unsafe",
    }
    assert all(len(PHRASES[category]) >= 6 for category in CATEGORIES)


@pytest.mark.parametrize(("category", "phrase"), [(c, p) for c in CATEGORIES for p in PHRASES[c]])
def test_every_phrase_in_the_lists_is_found_when_a_child_types_it(category: str, phrase: str) -> None:
    verdict = assess(_sample(phrase))
    assert verdict.urgent, phrase
    assert CATEGORIES.index(verdict.category or "") <= CATEGORIES.index(category)


@pytest.mark.parametrize("phrase", NOT_RISK)
def test_every_not_risk_phrase_is_not_urgent_on_its_own(phrase: str) -> None:
    assert not assess(_sample(phrase)).urgent, phrase


# --- one representative message per category -----------------------------------------------------


@pytest.mark.parametrize(
    ("message", "category"),
    [
        ("i want to kill myself", "suicide"),
        ("i have been cutting my arms", "self_harm"),
        ("my carer hits me", "abuse"),
        ("someone at the home hurt me", "hurt"),
        ("i ran away last night", "missing"),
        ("he said not to tell anyone", "exploitation"),
        ("i don't feel safe", "unsafe"),
    ],
)
def test_a_plain_message_of_each_kind_is_urgent_with_its_category(message: str, category: str) -> None:
    verdict = assess(message)
    assert verdict.urgent
    assert verdict.category == category
    assert verdict.reasons


def test_the_most_serious_concern_names_the_category_and_all_reasons_are_kept() -> None:
    verdict = assess("he hits me and i want to die")
    assert verdict.category == "suicide"
    assert "want to die" in verdict.reasons
    assert "hit/hits/hitting/hitted me/us" in verdict.reasons


# --- each category, typed the ways children type -------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "i want to die",
        "I WANT TO DIE",
        "i wanna die",
        "i wana die",
        "i want 2 die",
        "i w4nt t0 d13",
        "i want to diiiiie",
        "i wnat to die",
        "kms",
        "gonna kms tonight",
        "im going to kys",
        "i want to unalive myself",
        "i dont want to be here anymore",
        "i don't want to be here any more",
        "i want to end it all",
        "there is no point living",
        "everyone would be better off without me",
        "thinking about suicide",
        "sucide",
        "suicde",
        "i feel suicidle",
        "kil myself",
        "k1ll mys3lf",
        "kill my self",
        "k i l l  m y s e l f",
        "killmyself",
        "i w a n n a d i e",
        f"ki{ZW}ll my{ZWJ}self",
        f"sui{SHY}cide",
        "кіll myѕеlf",  # Cyrillic look-alikes
        "ｋｉｌｌ ｍｙｓｅｌｆ",  # full-width letters
        "i'm going to hang myself",
        "gonna jump off the bridge",
        "i wish i was never born",
        "i hope i dont wake up tomorrow",
        "i cant do this anymore",
        "nobody would miss me",
        "i want die",  # English as a second language
        "i no want live",
        "i want to go to sleep and not wake up",
        "i'm not going to be around much longer",
        "i feel like a burden",
        "nobody cares if i live or die",
        "i want to step in front of a train",
    ],
)
def test_wanting_to_die_is_urgent_however_it_is_typed(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "suicide", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "i self harm",
        "been self-harming again",
        "i cut myself last night",
        "i've been cutting again",
        "CUTTING MY WRISTS",
        "i sh",
        "i sh again last night",
        "i'm going to take all my meds",
        "how many pills would it take",
        "how many paracetamol does it take",
        "parcetamol",
        "paracetemol",
        "i took an overdose",
        "i want to od",
        "i took an od",
        "overdoes",
        "0verd0se",
        "i have a razor",
        "got a blade hidden",
        "i burn myself",
        "i keep hitting myself",
        "p i l l s",
        f"ta{ZW}blets",
        "оverdose",  # Cyrillic о
        "i hurt myself on purpose",
        "i drank bleach",
        "i scratch my arms till they bleed",
    ],
)
def test_self_harm_and_its_means_are_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "self_harm", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "my carer hits me",
        "he hit me",
        "HE HITS ME",
        "she beat me with a belt",
        "my stepdad beats us",
        "he touched me",
        "he touches me at night",
        "he touchd me",
        "t0uched me",
        f"he tou{ZW}ched me",
        "tоuched mе",  # Cyrillic о and е
        "he touched my privates",
        "he makes me do things i dont like",
        "my uncle does things to me",
        "i was raped",
        "r a p e d",
        "it was sexual",
        "they dont feed me",
        "i'm not fed",
        "there's been no food for days",
        "they locked me in my room",
        "my carer locks me out at night",
        "he slapped me",
        "she slaped me",
        "my bf hits me",
        "she threw a plate at me",
        "my carer leaves us on our own all weekend",
        "they left me at home on my own for days",
        "i have to sleep on the floor",
    ],
)
def test_abuse_and_neglect_are_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "abuse", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "someone hurt me",
        "someone at the home hurt me",
        "he hurts me",
        "they keep hurting me",
        "THEY KEEP HURTING ME",
        "they keep hurtin me",
        "he hurtsss me",
        "h3 hurt5 m3",
        f"she hu{ZW}rt me",
        "hurт me",  # Cyrillic т
        "h u r t me",
        "i have bruises on my arms",
        "i've got bruses",
        "i got stabbed",
        "he is killing me",
        "mae rhywun wedi fy mrifo",
    ],
)
def test_being_hurt_by_someone_is_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "hurt", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "ive run away",
        "I'VE RUN AWAY",
        "i ran away last night",
        "i r4n away",
        "i wanna run away",
        "im not going back",
        "i'm not goin back",
        "im sleeping rough",
        "sl33ping rough",
        f"sleeping r{ZW}ough",
        "sleeping rоugh",  # Cyrillic о
        "i'm r u n n i n g away",
        "i left home and i'm not telling anyone where i am",
        "i dont know where i am",
        "idk where i am",
        "sleeping at a mates house and they dont know",
        "im staying at my boyfriends and nobody knows",
        "i'm homeless",
        "rhedeg i ffwrdd",
        "dw i wedi rhedeg i ffwrdd",
    ],
)
def test_running_away_and_being_missing_are_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "missing", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "my boyfriend is older and buys me stuff",
        "my older boyfriend gave me weed",
        "he gives me money and presents",
        "they gave me a phone",
        "they gave me a new phone",
        "he said not to tell anyone",
        "HE SAID NOT TO TELL ANYONE",
        "he told me not to tell my carers",
        "keep it a secret",
        "its our little secret",
        "0ur s3cret",
        "our secrit",
        f"our se{ZW}cret",
        "оur sесrеt",  # Cyrillic о, с and е
        "he asked me for pics",
        "he keeps asking for photos",
        "send nudes",
        "i'm going to meet someone i met online",
        "a man keeps messaging me on snapchat and wants to meet",
        "he is 25 and im 14",
        "he's 25 and i'm 14",
        "my boyfriend is 19",
        "a 30 year old man messages me on snap",
        "i hold packages for these lads",
        "i been carrying stuff for some older lads",
        "i owe them money",
        "they said i owe them 500",
        "i have to run for them",
        "they want me to go to another town to drop stuff",
        "they make me sell drugs",
        "trapping",
        "they pay me to hold stuff",
        "send n u d e s",
        "s e n d n u d e s",
        "he bought me a new iphone",
        "my friend's older brother gives me vapes",
        "a guy in his 20s picks me up from school",
        "a man i met on tiktok wants me to come to his house",
        "he said he loves me and i can't tell my carers",
        "they make me go to other towns",
        "i have to keep a phone for them",
    ],
)
def test_grooming_and_exploitation_cues_are_urgent_without_any_risk_word(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "exploitation", (message, verdict)


@pytest.mark.parametrize(
    "message",
    [
        "i dont feel safe",
        "I DON'T FEEL SAFE",
        "i dnt feel safe",
        "i no feel safe",
        "i feel unsafe",
        "i feel unsaf",
        "im scared where i live",
        "scared to go home",
        "im scared of him",
        "im sc4red of him",
        "i'm scarred of him",
        f"sca{ZW}red of him",
        "scаred of him",  # Cyrillic а
        "not safe here",
        "my dad said he would kill me",
        "i am in danger",
        "u n s a f e",
        "i'm scared he'll find me",
        "please help me i'm scared",
        "someone is outside my house",
    ],
)
def test_feeling_unsafe_is_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == "unsafe", (message, verdict)


# --- Welsh ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "category"),
    [
        ("dw i eisiau marw", "suicide"),
        ("Dwi isio marw", "suicide"),
        ("dw i'n moyn marw", "suicide"),
        ("dwi eisiau lladd fy hun", "suicide"),
        ("dw i'n brifo fy hun", "self_harm"),
        ("mae rhywun wedi fy mrifo", "hurt"),
        ("mae e'n fy nharo", "abuse"),
        ("dw i ddim yn teimlo'n ddiogel", "unsafe"),
        ("dw i ddim yn teimlon ddiogel", "unsafe"),
        ("dwi ddim yn teimlo yn saff", "unsafe"),
        ("rhedeg i ffwrdd", "missing"),
        ("dw i ddim yn mynd yn ôl", "missing"),
    ],
)
def test_common_welsh_phrases_are_urgent(message: str, category: str) -> None:
    verdict = assess(message)
    assert verdict.urgent, message
    assert verdict.category == category


@pytest.mark.parametrize(
    "message",
    [
        "pwy yw fy swyddog adolygu",
        "Pwy yw fy swyddog adolygu annibynnol?",
        "dw i eisiau siarad gyda fy swyddog adolygu",
        "mae fy nain wedi marw",
        "dw i ddim eisiau byw yma",
        "diolch",
    ],
)
def test_everyday_welsh_is_not_urgent(message: str) -> None:
    assert not assess(message).urgent, message


# --- things that must not raise an alarm ---------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "who is my IRO",
        "who is my IRO?",
        "I killed it at football today",
        # Deliberate: a thing "killing me" is hyperbole. A person doing it ("he is killing me")
        # and threats ("my mum will kill me") stay urgent: see the tests above.
        "this homework is killing me",
        "my review is on tuesday",
        "can i see my brother more",
        "can i see my brother more we live in different houses",
        "I want to complain about my social worker",
        "menu",
        "1",
        "2",
        "stop",
        "STOP",
        "how do i contact my iro",
        "no I don't want to see this person on my own, I don't actually know who they are",
        "my review got cancelled AGAIN and I was ready to say everything",
        "please dont bring up the contraception stuff in front of everyone",
        "I want to move, I'm not happy where I live",
        "why did they move me, nobody told me anything",
        "I want to go back and live with my dad, can I go to court for that",
        "well you can't see me at school because that's my time, after school I see my parents,"
        " so if you want to see me it's going to have to be at 8 o'clock in the morning",
        "will my foster carer see these messages?",
        "can we do the questions later im busy",
        "i dont want to live with my dad",
        "she beat me at fifa lol",
        "hit me up later",
        "its 5 kms away",
        "my tablet is broken",
        "i take tablets for my asthma",
        "i went to the sexual health clinic",
        "i got a razer headset for christmas",
        "my review is overdue",
        "that's amusing",
        "i feel hopeless",
        "i cut my hair",
        "i fell and hurt myself at football",
        "my carer bought me new trainers",
        "my mum gave me a phone for my birthday",
        "my dad is 45",
        "my brother is 20 and im 14",
        "i'm 15 and my boyfriend is 16",
        "my foster mum said not to tell my brother about his present",
        "will me and my brother live together",
        "i am missing my mum",
        "i'm scared of spiders",
        "can i meet my iro",
        "my therapist is nice",
        "i had to step in front of the class",
        "my social worker asked for photos of my room",
        "i hold the door for people",
        "i need to take my pills for my adhd",
        "my team got beaten 3-0",
        "i met my friend online on minecraft and we play together",
        "my cat went missing",
        "my older brother got me a phone for my birthday",
        "my nan's in her 70s",
        "i was on my own for the weekend at my dads and it was fine",
        "what the hell",
    ],
)
def test_everyday_messages_are_not_urgent(message: str) -> None:
    verdict = assess(message)
    assert verdict == Triage(False, None, ()), (message, verdict)


# --- risk split over two messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "text", "category"),
    [
        ("i want to", "die", "suicide"),
        ("i wanna end", "it all", "suicide"),
        ("i dont want to be", "here anymore", "suicide"),
        ("he is 25", "and im 14", "exploitation"),
        ("he said not to", "tell anyone", "exploitation"),
        ("i dont feel", "safe", "unsafe"),
        ("dw i eisiau", "marw", "suicide"),
    ],
)
def test_risk_split_over_two_messages_is_urgent(previous: str, text: str, category: str) -> None:
    assert not assess(text).urgent
    assert not assess(previous).urgent
    verdict = assess(text, previous=previous)
    assert verdict.urgent
    assert verdict.category == category


def test_a_risk_in_the_previous_message_alone_is_not_reported_again() -> None:
    assert assess("i want to die").urgent
    assert assess("ok thanks", previous="i want to die") == Triage(False, None, ())


def test_a_new_risk_after_an_urgent_previous_message_is_still_urgent() -> None:
    verdict = assess("he hits me", previous="i want to die")
    assert verdict.urgent
    assert verdict.category == "abuse"
    assert "want to die" not in verdict.reasons


def test_two_everyday_messages_together_are_not_urgent() -> None:
    assert not assess("who is my IRO", previous="my review is on tuesday").urgent


# --- long input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "urgent"),
    [
        ("they gave me a phone", True),
        ("my carer gave me a phone", False),
        ("he gives me money", True),
        ("my nan gives me money", False),
        ("my dad gives me weed", True),  # drugs, alcohol and vapes count whoever gives them
        ("my carer pays me to wash the car", False),
        ("they pay me to carry bags", True),
    ],
)
def test_gifts_count_as_a_cue_by_who_gives_them_and_what_they_are(message: str, urgent: bool) -> None:
    verdict = assess(message)
    assert verdict.urgent is urgent, (message, verdict)
    assert verdict.category == ("exploitation" if urgent else None)


@pytest.mark.parametrize(
    ("message", "urgent"),
    [
        ("he is 25 and im 14", True),
        ("im 13 and he's 17", True),
        ("im 15 and he is 16", False),
        ("my boyfriend is 22", True),
        ("he is 30", False),  # an adult's age alone, with no relationship or contact word
        ("my dad is 40 and i am 12", False),
    ],
)
def test_an_age_gap_between_a_child_and_an_older_person_is_a_cue(message: str, urgent: bool) -> None:
    assert assess(message).urgent is urgent, message


def test_a_very_long_message_is_read_to_the_end() -> None:
    filler = "today i went to school and had my tea and played football with my friends " * 1400
    assert len(filler) > 100_000
    assert not assess(filler).urgent
    verdict = assess(filler + " and i want to die")
    assert verdict.urgent
    assert verdict.category == "suicide"


def test_very_long_nonsense_without_spaces_or_as_single_letters_is_handled() -> None:
    assert not assess("abcdefghij" * 10_000).urgent
    assert not assess(" ".join("abcdefghij" * 10_000)).urgent
    assert assess("x" * 100_000 + " he hits me").category == "abuse"


# --- the phrase files ----------------------------------------------------------------------------


def test_the_phrase_book_is_read_from_one_file_per_locale_in_the_flows_folder() -> None:
    assert BOOK.sources == ("flows/safeguarding/cy.yaml", "flows/safeguarding/en.yaml")
    assert "dim pwynt byw" in BOOK.phrases["suicide"]  # Welsh, from cy.yaml
    assert "want to die" in BOOK.phrases["suicide"]  # English, from en.yaml


def test_phrases_from_every_locale_apply_to_every_message() -> None:
    assert assess("i want to die, dw i eisiau marw").reasons == (
        "want to die",
        "eisiau/isio/moyn/eisie/isie ... marw",
    )


def test_loading_the_flow_library_loads_its_phrase_book() -> None:
    library = load_library(FLOWS, root=FLOWS.parent)
    assert isinstance(library.safeguarding, PhraseBook)
    assert library.safeguarding.phrases == BOOK.phrases
    assert "safeguarding" not in library.flows  # the subfolder holds no flows


def test_a_flow_library_without_a_safeguarding_folder_has_no_phrase_book(tmp_path: Path) -> None:
    for path in FLOWS.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_library(tmp_path).safeguarding is None


def _copy_phrase_files(folder: Path) -> Path:
    folder.mkdir()
    for path in (FLOWS / "safeguarding").glob("*.yaml"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def test_a_phrase_added_to_a_data_file_is_matched(tmp_path: Path) -> None:
    folder = _copy_phrase_files(tmp_path / "safeguarding")
    english = folder / "en.yaml"
    text = english.read_text(encoding="utf-8")
    assert text.count("\n  unsafe:\n") == 1
    english.write_text(text.replace("\n  unsafe:\n", "\n  unsafe:\n    - the blue van/car ... back\n"))
    message = "THE BLUE VAN is parked out back again"
    assert not assess(message).urgent
    verdict = triage.assess(message, book=load_phrasebook(folder))
    assert verdict == Triage(True, "unsafe", ("the blue van/car ... back",))


def test_a_welsh_phrase_added_to_the_welsh_file_is_matched(tmp_path: Path) -> None:
    folder = _copy_phrase_files(tmp_path / "safeguarding")
    welsh = folder / "cy.yaml"
    text = welsh.read_text(encoding="utf-8")
    welsh.write_text(text.replace("\n  hurt:\n", "\n  hurt:\n    - wedi fy ngwthio\n"))
    verdict = triage.assess("mae e wedi fy ngwthio", book=load_phrasebook(folder))
    assert verdict.category == "hurt"


def test_a_broken_phrase_file_is_rejected_naming_the_file_and_line(tmp_path: Path) -> None:
    folder = _copy_phrase_files(tmp_path / "safeguarding")
    (folder / "xx.yaml").write_text(
        "phrases:\n  suicide:\n    - i want to go\n  sucide:\n    - end it\n", encoding="utf-8"
    )
    with pytest.raises(FlowDefinitionError) as raised:
        load_phrasebook(folder, root=tmp_path)
    [problem] = raised.value.problems
    assert (problem.file, problem.line) == ("safeguarding/xx.yaml", 4)
    assert "'sucide' is not a kind of concern" in problem.message
    assert str(problem).startswith("safeguarding/xx.yaml:4: ")


def test_a_broken_phrase_file_stops_the_flow_library_loading(tmp_path: Path) -> None:
    for path in FLOWS.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "safeguarding").mkdir()
    (tmp_path / "safeguarding" / "en.yaml").write_text("phrases:\n  suicide:\n    - a//b\n")
    with pytest.raises(FlowDefinitionError) as raised:
        load_library(tmp_path, root=tmp_path.parent)
    [problem] = raised.value.problems
    assert (problem.file, problem.line) == (f"{tmp_path.name}/safeguarding/en.yaml", 3)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("phrases:\n  suicide: [unclosed\n", 3, "not valid YAML"),
        ("phrase:\n  suicide:\n    - die\n", 1, "'phrase' is not a section of a phrase file"),
        ("phrases:\n  suicide:\n    - die\n  sucide:\n    - die\n", 4, "'sucide' is not a kind of concern"),
        ("phrases:\n  suicide: want to die\n", 2, "is not of type 'array'"),
        ("phrases:\n  suicide:\n    - die\n    - [a, b]\n", 4, "is not of type"),
        ("phrases:\n  suicide:\n    - die\n    - want//to die\n", 4, "empty choice"),
        ("phrases:\n  suicide:\n    - ... die\n", 3, "not at the start or the end"),
        ("phrases:\n  suicide:\n    - want to die ...\n", 3, "not at the start or the end"),
        ("phrases:\n  suicide:\n    - '!!!'\n", 3, "no words to look for"),
        ("phrases:\n  exploitation:\n    - owe them # pounds\n", 3, "in double quotes"),
        ("not_risk:\n  - # km\n", 2, "in double quotes"),
        ("phrases:\n  suicide:\n    - die\n  suicide:\n    - dead\n", 4, "written twice"),
        ("typo_words:\n  - kill\n", 2, "6 or more letters"),
        ("typo_words:\n  - zebracorn\n", 2, "not in any phrase"),
        ("trusted_givers:\n  - foster carer\n", 2, "must be one word"),
        ('text_speak:\n  "don\'t": do not\n', 2, "one word in lower case"),
        ("text_speak:\n  gr8: great\n  brb: ''\n", 3, "needs the words it stands for"),
        ("text_speak:\n  im: i will\n", 2, "already means 'i am'"),
        ("joined_words:\n  her self: her self\n", 2, "two words, and what follows the colon one word"),
    ],
)
def test_each_kind_of_mistake_in_a_phrase_file_is_reported_at_its_line(
    text: str, line: int, says: str
) -> None:
    english = "phrases:\n  suicide:\n    - want to die\ntext_speak:\n  im: i am\n"
    with pytest.raises(FlowDefinitionError) as raised:
        parse_phrasebook({"en.yaml": english, "xx.yaml": text})
    found = [(p.file, p.line) for p in raised.value.problems if says in p.message]
    assert found == [("xx.yaml", line)], raised.value.problems


def test_an_empty_phrase_file_or_folder_is_handled(tmp_path: Path) -> None:
    assert parse_phrasebook({"en.yaml": "# nothing yet\n"}).phrases["suicide"] == ()
    with pytest.raises(FlowDefinitionError, match="no phrase files"):
        load_phrasebook(tmp_path)


def test_numbers_in_a_phrase_file_are_read_as_words() -> None:
    book = parse_phrasebook({"en.yaml": "phrases:\n  unsafe:\n    - 999\ntext_speak:\n  4: for\n"})
    assert book.phrases["unsafe"] == ("999",)
    assert triage.assess("call 999", book=book).urgent


@pytest.mark.parametrize(
    "message",
    [
        "my phone exploded",
        "we explored the castle",
        "we went on cruises",
        "we scored 3 goals at home",
        "i think i'm asexual",
        "the chips were overdone",
    ],
)
def test_an_everyday_word_is_never_read_as_a_misspelt_key_word(message: str) -> None:
    assert assess(message) == Triage(False, None, ()), message


@pytest.mark.parametrize(
    ("message", "category"),
    [
        ("i was explotied", "exploitation"),
        ("sacred of him", "unsafe"),  # a swap of two letters is one typo
        ("suicdie", "suicide"),
        ("i feel sucidal", "suicide"),
        ("he molestd me", "abuse"),
        ("i'm frigthened of him", "unsafe"),
    ],
)
def test_a_misspelt_key_word_still_counts(message: str, category: str) -> None:
    assert assess(message).category == category, message


def test_a_short_word_or_a_word_near_an_everyday_word_is_never_corrected() -> None:
    assert not assess("i feel hopeless").urgent  # not "homeless"
    assert not assess("that's amusing").urgent  # not "abusing"
    assert not assess("i want to dye my hair").urgent  # short words keep their spelling


# --- long input (speed is measured by `make bench`, not asserted here) ---------------------------


def test_a_hundred_thousand_characters_of_unknown_words_are_assessed_correctly() -> None:
    rng = random.Random(7)  # distinct made-up words of 3 to 12 letters, so typo correction runs
    words = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12))) for _ in range(15_000))
    message = " ".join(words)[:100_000]
    assert not assess(message, previous=message).urgent
    assert assess(message + " he hit me").urgent


# --- purity --------------------------------------------------------------------------------------


def test_the_triage_module_imports_only_the_standard_library_the_engine_and_its_libraries() -> None:
    tree = ast.parse(Path(triage.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    outside = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names | {"rapidfuzz", "yaml", "jsonschema"}
        and not name.startswith("app.engine.")
    }
    assert outside == set()


def test_the_triage_module_reads_files_only_in_load_phrasebook() -> None:
    tree = ast.parse(Path(triage.__file__).read_text(encoding="utf-8"))
    readers: set[str] = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    if name in {"open", "read_text", "read_bytes", "glob", "iterdir", "rglob"}:
                        readers.add(function.name)
    assert readers == {"load_phrasebook"}
