"""The child journeys end to end through POST /simulator/api/messages, with state in the database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.conversations import InboundMessage, handle
from app.extensions import db
from app.models import ChannelIdentity, Concern, Review, ReviewAction, WishesSubmission

from ..conftest import make_app

JORDAN = "+447700900001"


def say(client: FlaskClient, text: str, child: str = JORDAN) -> dict:
    response = client.post("/simulator/api/messages", json={"child": child, "text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def replies(client: FlaskClient, text: str, child: str = JORDAN) -> str:
    return "\n".join(say(client, text, child)["replies"])


def concerns() -> list[Concern]:
    return list(db.session.scalars(select(Concern).order_by(Concern.id)))


# -- wishes and feelings -------------------------------------------------------------------


def test_wishes_skip_not_sure_back_pause_restart_resume_change_and_send(
    demo: Flask, database_url: str, tmp_path: Path
) -> None:
    client = demo.test_client()
    text = replies(client, "my views")
    assert "Your next review is on" in text and "How are things going for you" in text
    assert "How are things where you live?" in replies(client, "3")
    assert "family" in replies(client, "its ok but my carer shouts sometimes")
    assert "How is school" in replies(client, "skip")
    assert "How are things with your family" in replies(client, "back")
    assert "How is school" in replies(client, "skip")
    assert "How are you feeling" in replies(client, "not sure")
    assert "Your answers are saved" in replies(client, "later")

    # The app restarts: a new process with the same database and keys.
    restarted = make_app(database_url, tmp_path, FIELD_ENCRYPTION_KEYS=demo.config["FIELD_ENCRYPTION_KEYS"])
    with restarted.app_context():
        client = restarted.test_client()
        text = replies(client, "carry on")
        assert "You did not finish last time" in text and "How are you feeling" in text
        for answer in [
            "fine",
            "I like football",
            "to stay at my school",
            "football",
            "nothing",
            "my brother",
            "my old carer",
            "after school please",
            "my brother",
            "please dont talk about my mum",
        ]:
            replies(client, answer)
        assert "Who should share them" in replies(client, "3")
        assert "Would you like one?" in replies(client, "1")
        text = replies(client, "no")
        assert "Here is what you told me:" in text
        assert "How things are: Not good" in text
        assert "Where you live: its ok but my carer shouts sometimes" in text
        assert "Family: -" in text
        assert "School or work: not sure" in text and "Feelings and health: fine" in text
        assert "Anything to know" not in text
        assert (
            "Going to the review: No, I will send my views another way" in text
            and "Who shares your views: My social worker" in text
        )
        assert "Private, for your IRO only: please dont talk about my mum" in text

        assert "Which answer" in replies(client, "change")
        assert "How is school" in replies(client, "school or work")
        text = replies(client, "year 9 is hard but ok")
        assert "School or work: year 9 is hard but ok" in text

        body = say(client, "1")
        assert len(body["effects"]) == 1 and body["effects"][0]["kind"] == "wishes_submitted"
        assert ["wishes.private", "please dont talk about my mum"] in body["effects"][0]["answers"]
        assert "Thank you. Your views are saved" in body["replies"][0]

        submission = db.session.scalar(select(WishesSubmission))
        child = ChannelIdentity.find(db.session, "sms", JORDAN).child
        review = db.session.scalar(
            select(Review).where(Review.child_id == child.id, Review.status == "scheduled")
        )
        assert submission.review_id == review.id and submission.seen_at is None
        assert submission.answers["answers"]["wishes.school"] == "year 9 is hard but ok"
        assert submission.answers["private"] == ["wishes.private"]
        # A new form starts afresh.
        assert "How are things going for you" in replies(client, "my views")
        db.session.remove()
        db.engine.dispose()  # the restarted app's own connections


def test_everything_is_fine_is_accepted_with_one_gentle_question(client: FlaskClient) -> None:
    replies(client, "my views")
    text = replies(client, "everything is fine")
    assert "Is there anything at all, big or small" in text
    text = replies(client, "no")
    assert (
        "How things are: Everything is fine, I have nothing to add" in text and "Anything to know: no" in text
    )
    assert say(client, "send")["effects"][0]["kind"] == "wishes_submitted"


def test_safeguarding_interrupts_a_half_finished_form_and_the_form_resumes(client: FlaskClient) -> None:
    replies(client, "my views")
    replies(client, "2")
    replies(client, "home is ok")
    body = say(client, "my stepdad hits me")
    assert body["effects"][0]["kind"] == "concern" and body["effects"][0]["urgent"] is True
    assert "999" in body["replies"][0] and len(body["replies"]) == 1
    # The form is where it was: the next answer is taken for the family question.
    assert "How is school" in replies(client, "i miss seeing my dad")


def test_a_structured_answer_i_do_not_feel_safe_raises_the_same_flag(client: FlaskClient) -> None:
    replies(client, "menu")
    replies(client, "4")
    body = say(client, "1")
    assert body["effects"][0]["kind"] == "concern" and body["effects"][0]["urgent"] is True
    assert "999" in body["replies"][0] and "0800 1111" in body["replies"][0]
    assert concerns()[-1].urgent


# -- rights and advocacy -------------------------------------------------------------------


def test_rights_explainers_have_more_and_an_advocate_request_is_routed(client: FlaskClient) -> None:
    text = replies(client, "my rights")
    assert "Advocates: someone on your side" in text
    assert "only on your side" in replies(client, "3")
    assert "does not work for your social work team" in replies(client, "more")
    replies(client, "rights")
    replies(client, "advocate")
    body = say(client, "I want an advocate")
    assert body["effects"] == [{"kind": "advocate_requested"}]
    assert "We have asked for an advocate" in body["replies"][0]
    assert "Demo Advocacy Service, 01632 960500" in "\n".join(body["replies"])
    concern = concerns()[-1]
    assert (concern.category, concern.route) == ("advocacy", "advocacy")


def test_rights_never_hard_code_the_role_title(client: FlaskClient) -> None:
    child = ChannelIdentity.find(db.session, "sms", JORDAN).child
    child.authority.role_short = {"en": "progress reviewer"}
    child.authority.role_title = {"en": "Progress Reviewer"}
    db.session.commit()
    text = replies(client, "my rights")
    assert "your progress reviewer and your social worker" in text and "IRO" not in text
    assert "Your Progress Reviewer (progress reviewer) is Priya Shah." in replies(client, "menu\n") + replies(
        client, "1"
    )


# -- my plan -------------------------------------------------------------------------------


def test_my_plan_shows_each_action_in_plain_words_and_late_is_derived(client: FlaskClient) -> None:
    text = replies(client, "my plan")
    assert "Start swimming lessons on Saturdays - your carer - done" in text
    assert "Get you a laptop for school work - your social worker - was due" in text and "- late" in text
    assert (
        "Check if you can stay at the same school - the school and your social worker - waiting for a manager"
        in text
    )
    assert (
        "Arrange more time with your brother - your social worker - by" in text
        and "agreed, not done yet" in text
    )


def test_saying_an_action_has_not_happened_raises_a_concern_linked_to_it(client: FlaskClient) -> None:
    text = replies(client, "my plan")
    number = next(line.split()[0] for line in text.splitlines() if "laptop" in line)
    body = say(client, number)
    assert body["effects"][0]["kind"] == "action_not_happened"
    concern = concerns()[-1]
    action = db.session.get(ReviewAction, concern.review_action_id)
    assert action.description == "Get you a laptop for school work"
    assert body["effects"][0]["action_id"] == action.id
    assert "aim to reply within two working days" in body["replies"][0]


def test_a_child_with_no_plan_is_told_so_honestly(client: FlaskClient) -> None:
    assert "There is nothing from your last review saved here yet" in replies(
        client, "my plan", "+447700900003"
    )


# -- concerns ------------------------------------------------------------------------------


def test_a_concern_from_the_menu_gets_an_honest_acknowledgement(client: FlaskClient) -> None:
    replies(client, "worry")
    assert "Tell me about it in your own words." in replies(client, "school")
    body = say(client, "I got excluded today and nobody told my carer")
    assert body["effects"][0]["kind"] == "concern" and body["effects"][0]["category"] == "education"
    text = "\n".join(body["replies"])
    assert "aim to reply within two working days" in text and "999" in text and "01632 960999" in text
    concern = concerns()[-1]
    assert concern.route == "iro" and "excluded" in concern.detail


def test_a_concern_about_the_iro_goes_to_their_manager(client: FlaskClient) -> None:
    replies(client, "worry")
    assert "will go to your IRO's manager" in replies(client, "8")
    body = say(client, "she never calls me back")
    assert body["effects"][0]["route"] == "manager"
    assert "Your IRO's manager will read this" in body["replies"][0]
    assert concerns()[-1].route == "manager"


# A Tuesday morning: in office hours, so no "office closed" line follows the menu.
@time_machine.travel(datetime(2026, 11, 24, 11, 0, tzinfo=UTC), tick=True)
def test_free_text_in_the_middle_of_a_journey_is_never_dropped(client: FlaskClient) -> None:
    replies(client, "my rights")
    body = say(client, "i want to move to a different foster home")
    assert body["effects"][0]["kind"] == "concern" and body["effects"][0]["category"] == "message"
    assert "I have passed your message to your IRO" in body["replies"][0]
    assert "What would you like to know about?" in body["replies"][-1]
    assert concerns()[-1].detail == "i want to move to a different foster home"


def test_free_text_instead_of_a_menu_choice_is_passed_on(client: FlaskClient) -> None:
    body = say(client, "can you tell my iro i got a new job")
    assert body["effects"][0]["category"] == "message"
    assert "passed your message" in body["replies"][0]


def test_outside_office_hours_every_acknowledgement_says_when_it_will_be_seen(demo: Flask) -> None:
    saturday = datetime(2026, 11, 28, 14, 0)
    handle(InboundMessage(channel="web", sender=JORDAN, text="worry", identity_channel="sms"), now=saturday)
    handle(InboundMessage(channel="web", sender=JORDAN, text="school", identity_channel="sms"), now=saturday)
    outcome = handle(
        InboundMessage(
            channel="web", sender=JORDAN, text="my teacher keeps shouting", identity_channel="sms"
        ),
        now=saturday,
    )
    text = "\n".join(outcome.replies)
    assert "Our office is closed now" in text and "Monday 30 November 2026, 09:00" in text
    weekday = datetime(2026, 12, 1, 11, 0)
    outcome = handle(
        InboundMessage(
            channel="web", sender=JORDAN, text="can you tell my iro i got a new job", identity_channel="sms"
        ),
        now=weekday,
    )
    assert "Our office is closed now" not in "\n".join(outcome.replies)
    outcome = handle(
        InboundMessage(channel="web", sender=JORDAN, text="my nan died", identity_channel="sms"), now=saturday
    )
    assert outcome.replies[0].startswith("I am sorry") and "Our office is closed now" in outcome.replies[1]


# -- feelings and off-topic ----------------------------------------------------------------


def test_sad_news_gets_a_kind_reply_first(client: FlaskClient) -> None:
    body = say(client, "my nan died yesterday")
    assert body["replies"][0].startswith("I am sorry to hear that.")
    assert body["effects"][0]["category"] == "feelings"


def test_off_topic_chat_is_redirected_politely_to_the_menu(client: FlaskClient) -> None:
    text = replies(client, "lol")
    assert "What would you like to do?" in text and "lol" not in text.lower()
