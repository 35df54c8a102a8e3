"""Safeguarding triage: spot a risk of harm in any message a child sends, in any flow.

``assess(text, previous)`` runs on every inbound message before the flow sees it. It is a
deliberately cautious word-and-phrase check: a missed risk is far worse than a false alarm, so
when a phrase is ambiguous it counts as urgent. The one kind of hyperbole treated as safe is a
thing "killing me" ("this homework is killing me"); "he is killing me" and threats such as
"my mum will kill me" are still urgent.

How a message is read, in order:

1. NFKC (full-width letters become ASCII), invisible characters out, case folded, look-alike
   Cyrillic and Greek letters mapped to Latin, accents dropped (Welsh "yn ôl" -> "yn ol").
2. Each word: leetspeak mapped when the word also has a letter ("k1ll", "$uicide"; "14" stays a
   number), letters typed 3+ times squashed ("diiiie" -> "die"), text-speak expanded ("wanna" ->
   "want to", "dont" -> "do not", "bf" -> "boyfriend"), then small typos corrected towards the
   words in the phrase lists ("kil" -> "kill", "sucide" -> "suicide").
3. Runs of single letters are joined ("k i l l" -> "kill") and, like any long unknown word
   ("killmyself"), also searched with the spaces taken out of the phrases.

The phrase lists are written in the same plain words and go through the same steps, so "don't",
"dont" and "do not" in a list all mean the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from app.engine.text import strip_invisible

# ---------------------------------------------------------------------------------------------
# Data. Participation workers will be able to edit these lists later (with young people's help),
# so keep them plain. In a phrase, "a/b" means either word at that place, "..." means up to three
# other words may come there, and "#" means any number.
# ---------------------------------------------------------------------------------------------

# Most serious first: the first category found names the concern.
CATEGORIES: tuple[str, ...] = (
    "suicide",
    "self_harm",
    "abuse",
    "hurt",
    "missing",
    "exploitation",
    "unsafe",
)

PHRASES: dict[str, tuple[str, ...]] = {
    "suicide": (
        "kill/killing/killed myself",
        "kms",
        "i ... kys",
        "to kys",
        "suicide/suicidal",
        "unalive/unalived/unaliving",
        "end/ending my life",
        "end my own life",
        "take/taking my own life",
        "take/taking my life",
        "end/ending it all",
        "like/about/of ending it",
        "want/going/about to end it",
        "end it tonight/now/today",
        "want to die",
        "wanna die",
        "want die",
        "want/wanted/wanting/ready/deserve to ... die",
        "want/wanna be dead",
        "wish i was/were dead",
        "wish i ... die/died",
        "hope i ... die",
        "wish i was/were/had not/never ... born",
        "better off dead",
        "better off without me",
        "rather die",
        "rather be dead",
        "not want to be here anymore",
        "not want to be around anymore",
        "not want be here anymore",
        "not want to be alive",
        "not/no want to live",
        "not/no want live",
        "not want to exist",
        "not want to wake up",
        "hope/wish/sleep/and ... never wake up",
        "hope/wish i ... not wake up",
        "sleep forever",
        "want to disappear",
        "disappear forever",
        "want it/everything ... to stop",
        "had enough of everything/life/living",
        "sleep ... not/never wake up",
        "not ... be around/here ... longer",
        "not be here/around tomorrow",
        "am/feel/like a burden",
        "am burden",
        "burden to everyone/everybody",
        "live or die",
        "point anymore",
        "no point in anything",
        "no point ... living/alive/life",
        "the point ... living/alive",
        "no point ... going on",
        "nothing to live for",
        "no reason to live",
        "not worth living",
        "can not go on",
        "can not carry on",
        "can not do this anymore",
        "can not take it anymore",
        "can not cope anymore",
        "tired/sick of living",
        "tired/sick of being alive",
        "done with life/living",
        "give/giving/given/gave up on life",
        "nobody/noone would ... miss me",
        "nobody/noone would care if i",
        "if i died",
        "if i was/were dead",
        "when i am dead",
        "hang/hanging/hung/strangle myself",
        "noose",
        "to jump off",
        "jump/jumping off ... bridge/building/roof/cliff/balcony/tower/flats",
        "jump/jumping/step/stepping/throw/throwing ... in front of ... train/bus/car/lorry/traffic",
        "goodbye forever",
        "this is goodbye",
        # Welsh
        "eisiau/isio/moyn/eisie/isie ... marw",
        "lladd/ladd fy hun/hunan",
        "hunanladdiad",
        "ddim/dim eisiau/isio/moyn byw",
        "gwell gen i farw",
        "dim pwynt byw",
    ),
    "self_harm": (
        "self harm/harming/harmed/harms/harmer",
        "self injury/injure/injuring",
        "hurt/hurting/hurted/harm/harming myself",
        "myself on purpose",
        "cut/cutting/cuts/cutted myself",
        "cut/cutting/cuts ... wrist/wrists/arm/arms/leg/legs/thigh/thighs/skin/stomach",
        "been/started/keep/still cutting",
        "stop cutting",
        "cutting again",
        "urge/urges/want to cut",
        "burn/burning/burnt/burned/scratch/scratching myself",
        "starve/starving myself",
        "make/making myself sick",
        "punch/punching/hit/hitting/bite/biting myself",
        "bang/banging my head",
        "punch/punching/punched/hit/hitting walls/wall",
        "till/until ... bleed/bleeds/bled/bleeding",
        "drank/drink/drinking/swallowed/swallow/swallowing bleach/poison",
        "poison/poisoning myself",
        "stopped eating",
        "razor/razors/blade/blades",
        "to od",
        "an od",
        "i od/oded/odd",
        "od on/tonight/again",
        "overdose/overdosed/overdosing/overdoses",
        "paracetamol",
        "pills/tablets",
        "all my/the meds/medication/medicine/pills/tablets",
        "how many ... pills/tablets/paracetamol/meds",
        "i/been/im sh",
        "sh again/scars/urges",
        "shing",
        "urge/want to sh",
        "relapsed",
        # Welsh
        "brifo/frifo fy hun/hunan",
        "torri/dorri fy hun/hunan",
        "hunan niweidio/anafu",
        "gorddos",
    ),
    "abuse": (
        "hit/hits/hitting/hitted me/us",
        "smack/smacks/smacked/smacking me/us",
        "slap/slaps/slapped/slapping me/us",
        "punch/punches/punched/punching me/us",
        "kick/kicks/kicked/kicking me/us",
        "beat/beats/beating/beaten me/us",
        "beaten by",
        "strangle/strangles/strangled/choke/chokes/choked/choking me",
        "push/pushes/pushed/shove/shoves/shoved/drag/drags/dragged me",
        "grab/grabs/grabbed me",
        "burn/burns/burnt/burned me",
        "throw/throws/threw/throwing ... at me",
        "into/in the bathroom when/while",
        "watches/watched/watching me ... shower/bath/undress/undressing/changing",
        "private parts",
        "have/made/make/makes to sleep on the floor",
        "not eaten since/for/in",
        "never any food",
        "left/leaves/leave/leaving me/us ... ... own ... days/weekend/weekends/nights",
        "left/leaves/leave/leaving me/us ... ... alone ... days/weekend/weekends/nights",
        "pulls/pulled my hair",
        "touch/touches/touched/touching me",
        "touch/touches/touched/touching ... private/privates/bum/boobs/breasts/chest/willy/down",
        "made/makes/make/making me touch",
        "sexual/sexually",
        "sex with me",
        "made/makes/forced/forces/force me ... sex",
        "rape/raped/raping/rapes/rapist",
        "molest/molested/molesting/molests",
        "abuse/abused/abusing/abuses/abusive/abuser",
        "made/makes/make/making me do things/stuff",
        "does/did/do things/stuff to me",
        "forced/forces/forcing me",
        "show/shows/showed/made/makes me ... porn",
        "shows/showed me his/her",
        "into/in my bed",
        "into/in my room at night",
        "flash/flashed/flashes me",
        "not fed",
        "not/never feed/feeding me",
        "no food for/in/at",
        "not/never eaten ... days",
        "not allowed to eat",
        "not allowed food",
        "not let me eat",
        "give/gives me no food",
        "not give/giving me ... food",
        "starve/starving me",
        "go/going hungry",
        "lock/locks/locked/locking me in/out",
        "locked in my/the room/bedroom/house",
        "i am locked in",
        "left alone for days",
        # Welsh
        "fy nharo",
        "fy nghuro",
        "cyffwrdd a fi",
        "cyffwrdd fi",
        "treisio/nhreisio",
        "cam drin",
        "dim bwyd ers",
        "heb fwyd ers",
        "fy nghloi",
    ),
    "hurt": (
        "hurt/hurts/hurting/hurted me/us",
        "he/she/they is/are killing me",
        "bruise/bruises/bruised/bruising",
        "black eye",
        "marks on me/my",
        "left marks",
        "made me bleed",
        "i am bleeding",
        "he/she/they broke/broken my",
        "attacked/assaulted/stabbed/jumped me",
        "got/was/been/get/getting attacked/assaulted/stabbed/jumped",
        "beat/beaten up",
        "stab/stabbed",
        "pulled/has/had/got/carrying/carries ... knife/gun/weapon",
        "threatened me with",
        # Welsh
        "fy mrifo",
        "cleisiau",
    ),
    "missing": (
        "i ... run/ran away",
        "run/ran/running away from",
        "running away",
        "runaway",
        "to run away",
        "i/have ran/run off",
        "done/did a runner",
        "not going back",
        "never going back",
        "not/never go/going/coming back home/there",
        "not going home",
        "not go home",
        "not been home",
        "not gone home",
        "sleeping/sleep/slept/sleeps rough",
        "sleeping/sleep/slept on the street/streets",
        "sleeping/sleep/slept outside",
        "sleeping/sleep/slept in a/the park/car/tent/stairwell",
        "on the streets",
        "homeless",
        "nowhere to sleep/stay/go/live",
        "not know where i am",
        "nobody/noone knows where i am",
        "sleeping/staying/stopping/kipping/crashing at/round/over ... ... not know",
        "sleeping/staying/stopping/kipping/crashing at/round/over ... ... nobody/noone knows",
        "i/ive/im/been/keep/will/might go/going/gone/went missing",
        "reported missing",
        "left home",
        "left my/the placement",
        "not at my/the placement",
        "not telling/tell/told ... where i am",
        "police ... looking for me",
        "on the run",
        "out all night",
        # Welsh
        "rhedeg/redeg i ffwrdd",
        "ddim yn mynd yn ol/nol",
        "ddim yn gwybod lle/ble ... i",
        "cysgu ar y stryd/strydoedd",
        "cysgu allan",
    ),
    "exploitation": (
        "not to tell anyone/anybody/noone/nobody/people/adults",
        "not to tell my/the/your ... carer/carers/worker/iro/police/teacher/teachers/staff",
        "not to tell my/the/your ... mum/dad/mam/parents/foster/keyworker/family",
        "not allowed to tell",
        "not tell anyone/anybody/noone/nobody",
        "not tell my/the/your ... carer/carers/worker/iro/police/teacher/teachers/staff",
        "man/men/guy/guys/bloke/boyfriend/girlfriend/lad/lads/stranger ... in his/her/their # s",
        "in his/her/their twenties/thirties/forties/fifties",
        "man/men/guy/guys/bloke/stranger/strangers/adult i met",
        "make/makes/made/making me go ... town/towns/city/cities/area/areas",
        "keep/keeping/look/looking ... phone/phones/money/knife/stuff/things/drugs for",
        "keep/keeping it/this ... secret",
        "keep it/this between us",
        "our ... secret",
        "secret between us",
        "secret boyfriend/girlfriend/relationship",
        "nobody/noone can/must know",
        "if i tell",
        "send/sent/sending/share/shared ... nudes/nude/naked",
        "nudes",
        "naked",
        "asked/asks/asking/wants/wanted/keeps ... pics/pictures/photos/pic/photo/picture",
        "asked/asks/asking/wants/wanted/keeps ... selfies/videos/vids/snaps",
        "pics/pictures/photos/videos of me/my body",
        "dick pic/pics",
        "rate my body",
        "take/took/taking off my clothes/top",
        "take/took/taking my clothes/top off",
        "in my underwear",
        "meet/meeting/meetup ... met ... online/internet/snapchat/snap/instagram/insta/tiktok",
        "meet/meeting/meetup ... met ... discord/roblox/fortnite/whatsapp/facebook/app/omegle",
        "meet/meeting/meetup ... from online/internet/snapchat/snap/instagram/insta/tiktok",
        "meet/meeting/meetup ... from discord/roblox/fortnite/whatsapp/facebook/app/omegle",
        "online boyfriend/girlfriend",
        "wants/wanted to meet me/up",
        "messaging/messages/messaged/texting/texts/snapping me ... ... meet",
        "man/men/guy/guys/stranger/strangers/someone/somebody/bloke/adult ... keeps/keep ... me",
        "meet up with him/her/them/someone",
        "older boyfriend/girlfriend/man/men/guy/guys/lad/lads/friend/friends/woman/bloke",
        "much older",
        "boyfriend/girlfriend is ... older",
        "grown/adult man/men/boyfriend",
        "owe/owes/owed/owing them/him/her/people/someone/somebody ... money/cash/debt/#",
        "in debt to",
        "pay/paying them/him back",
        "work/working it off",
        "run/running/ran/work/working/deal/dealing/sell/selling for them/him/these/those",
        "hold/holding/held/carry/carrying/carried ... stuff/things/package/packages/parcel for",
        "hold/holding/held/carry/carrying/carried ... parcels/bag/bags/drugs/something for",
        "hide/hiding/hid/stash/stashing ... stuff/things/package/packages/bag/bags/drugs",
        "deliver/delivering/drop/dropping ... stuff/packages/package/parcels/parcel/drugs/bags",
        "drop/dropping/dropped off stuff/packages/things",
        "send/sends/sent/sending me to another/other town/city/area",
        "go/going/went ot",
        "county lines",
        "running lines",
        "trap house/phone/line",
        "trapping",
        "bando",
        "shotting",
        "drug dealer",
        "my dealer",
        "dealing drugs",
        "sell/selling/sold drugs/weed/coke/crack/pills",
        "drugs for them/him",
        "second phone",
        "burner",
        "easy money",
        "quick money",
        "picks/picked/pick me up in his/a car",
        "took/takes/take me to ... hotel/flat/parties",
        "party/parties at a flat",
        "sleep/slept with his/their friends/mates",
        "have/had to sleep with",
        "groom/grooming/groomed/exploit/exploited/exploiting/exploitation",
        "trafficked/trafficking",
        # Welsh
        "ein cyfrinach",
        "paid dweud wrth neb",
        "paid a dweud wrth neb",
    ),
    "unsafe": (
        "not/no feel/feeling/felt safe",
        "feel/feeling/felt not/un safe",
        "unsafe",
        "not safe",
        "in danger",
        "scared/afraid/frightened/terrified/petrified/scarred of him/her/them/he/she/they",
        "scared/afraid/frightened/terrified/petrified/scarred of someone/somebody/people/men",
        "scared/afraid/frightened/terrified/petrified of my ... dad/mum/mam/stepdad/stepmum",
        "scared/afraid/frightened/terrified/petrified of my ... carer/carers/foster/brother",
        "scared/afraid/frightened/terrified/petrified of my ... boyfriend/girlfriend/uncle",
        "he/she/they scare/scares/frighten/frightens me",
        "scared/afraid/frightened/terrified/petrified ... go home/back",
        "scared/afraid/frightened/terrified/petrified ... home/house/placement",
        "scared/afraid/frightened/terrified/petrified where i live/am",
        "scared/afraid/frightened/terrified/petrified for my life",
        "threaten/threatened/threatens/threatening me/to/my",
        "someone/somebody/man/men/stranger/guy/he/they ... outside my/the house/home/door/window",
        "someone/somebody/man/stranger/guy/he/they ... watching me/my",
        "scared/afraid/frightened/terrified/petrified he/she/they ... will/going/find/finds",
        "help me ... scared/afraid/frightened/terrified",
        "scared/afraid/frightened/terrified ... help me",
        "going/want/wants to kill/hurt/stab/beat me",
        "will/would kill/hurt/stab/beat me",
        "said ... kill/hurt/stab/beat me",
        "following/followed/stalking me",
        "get me out of here",
        "come and get me",
        "call the police",
        "999",
        "trapped",
        # Welsh
        "ddim/dim yn teimlo/teimlon ... ddiogel/saff",
        "ddim/dim yn ddiogel/saff",
        "ofn mynd adre/adref",
        "ofn e/fe/fo/hi/nhw",
        "mewn perygl",
    ),
}

# Phrases that look like risk but are not. A risk phrase found wholly inside one of these is
# dropped ("beat me at fifa", "5 kms", "I don't want to live with my dad").
NOT_RISK: tuple[str, ...] = (
    "# km/kms",
    "hit me up",
    "beat/beats me at/in/to",
    "sexual health/orientation/identity/education",
    "contraceptive/contraception pills/tablets",
    "take/taking/takes/on pills/tablets for",
    "my pills/tablets/meds/medication for",
    "worker/carer/carers/iro/teacher/school asked/asks/asking/wants ... photos/pictures/pics",
    "birth control pills",
    "razor scooter",
    "in danger of",
    "not/no want to live here/with/there/in/at/near/back/where/somewhere",
    "not/no want live here/with/there/in/at/near/back/where",
    "not want to wake up early/at/for/in",
    "hurt myself playing/falling/skating/riding",
    "hurt myself at/in/playing football/pe/rugby/training/gym",
    "fell/fall ... and hurt myself",
    "ddim/dim eisiau/isio/moyn byw yma/gyda/efo/hefo/yno/fan/yn/mewn",
)

# Long key words that may be misspelt by one letter (two for 9+ letters) and still count.
TYPO_WORDS: tuple[str, ...] = (
    "suicide",
    "suicidal",
    "myself",
    "overdose",
    "paracetamol",
    "unalive",
    "anymore",
    "hurting",
    "touched",
    "touching",
    "touches",
    "sexual",
    "sexually",
    "secret",
    "pictures",
    "photos",
    "boyfriend",
    "girlfriend",
    "strangled",
    "molested",
    "bruises",
    "threatened",
    "threatening",
    "frightened",
    "scared",
    "unsafe",
    "exploited",
    "without",
    "hunanladdiad",
)
# Not here on purpose, because a real word is one letter away: abused (amused), abusing
# (amusing), homeless (hopeless), trapping (tapping), overdosed (overused).

# Text-speak and contractions, expanded before matching (in messages and in the lists above).
TEXT_SPEAK: dict[str, str] = {
    "im": "i am",
    "iam": "i am",
    "ima": "i am going to",
    "imma": "i am going to",
    "ive": "i have",
    "id": "i would",
    "dont": "do not",
    "dnt": "do not",
    "dun": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "can not",
    "cannot": "can not",
    "carnt": "can not",
    "wont": "will not",
    "isnt": "is not",
    "aint": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "hadnt": "had not",
    "shouldnt": "should not",
    "wouldnt": "would not",
    "couldnt": "could not",
    "wnat": "want",
    "wnt": "want",
    "watn": "want",
    "too": "to",
    "wanna": "want to",
    "wana": "want to",
    "wanta": "want to",
    "wan2": "want to",
    "want2": "want to",
    "gonna": "going to",
    "gona": "going to",
    "gunna": "going to",
    "gna": "going to",
    "finna": "going to",
    "tryna": "trying to",
    "gotta": "got to",
    "u": "you",
    "ur": "your",
    "youre": "you are",
    "r": "are",
    "n": "and",
    "2": "to",
    "4": "for",
    "hes": "he is",
    "shes": "she is",
    "theyre": "they are",
    "theyve": "they have",
    "thats": "that is",
    "whats": "what is",
    "hell": "he will",
    "shell": "she will",
    "theyll": "they will",
    "youll": "you will",
    "bf": "boyfriend",
    "gf": "girlfriend",
    "ppl": "people",
    "somei": "someone",
    "sumi": "someone",
    "anyi": "anyone",
    "noi": "noone",
    "meself": "myself",
    "maself": "myself",
    "miself": "myself",
    "mself": "myself",
    "myslf": "myself",
    "selfharm": "self harm",
    "selfharming": "self harming",
    "selfharmed": "self harmed",
    "idk": "i do not know",
    "dunno": "do not know",
    "dno": "do not know",
    "duno": "do not know",
    "cuz": "because",
    "coz": "because",
    "cos": "because",
    "bc": "because",
    "pls": "please",
    "plz": "please",
    "wiv": "with",
    "nothin": "nothing",
    "nuffin": "nothing",
    "ded": "dead",
    "neva": "never",
    "nvr": "never",
    "dwi": "dw i",
}

# Two typed words that mean one word in the lists.
JOINED: dict[tuple[str, str], str] = {
    ("my", "self"): "myself",
    ("any", "more"): "anymore",
    ("some", "one"): "someone",
    ("no", "one"): "noone",
    ("no", "body"): "nobody",
    ("any", "one"): "anyone",
}

# Gifts: "(someone) gave me (a thing)". Drugs, alcohol and vapes count from anyone; phones from
# anyone but a trusted adult; other gifts only from a boyfriend, a stranger, "he", "they" and so on.
GIFT_VERBS: tuple[str, ...] = (
    "gave",
    "gives",
    "give",
    "giving",
    "given",
    "buys",
    "bought",
    "buy",
    "buying",
    "got",
    "gets",
    "get",
    "getting",
    "sends",
    "sent",
    "send",
    "sending",
    "offered",
    "offers",
    "offer",
    "lends",
    "lent",
    "pays",
    "paid",
    "pay",
    "paying",
)
GIFT_SUBSTANCES: frozenset[str] = frozenset(
    {
        "drugs",
        "weed",
        "alcohol",
        "vodka",
        "booze",
        "vape",
        "vapes",
        "cigarettes",
        "cigs",
        "fags",
        "pills",
        "cocaine",
        "ket",
        "spice",
    }
)
GIFT_PHONES: frozenset[str] = frozenset({"phone", "phones", "iphone", "mobile", "sim", "burner"})
GIFT_SOFT: frozenset[str] = frozenset(
    {
        "money",
        "cash",
        "presents",
        "present",
        "gifts",
        "gift",
        "clothes",
        "trainers",
        "shoes",
        "jewellery",
        "necklace",
        "earrings",
        "nails",
        "lashes",
        "makeup",
        "perfume",
        "takeaway",
        "takeaways",
        "stuff",
        "things",
        "lifts",
        "lift",
        "rides",
        "credit",
        "bag",
        "bags",
        "designer",
    }
)
TRUSTED_GIVERS: frozenset[str] = frozenset(
    {
        "mum",
        "mam",
        "mom",
        "mummy",
        "dad",
        "daddy",
        "nan",
        "nana",
        "nanny",
        "gran",
        "granny",
        "grandma",
        "grandad",
        "grandpa",
        "nain",
        "taid",
        "carer",
        "carers",
        "foster",
        "keyworker",
        "worker",
        "iro",
        "teacher",
        "school",
        "council",
        "aunt",
        "auntie",
        "aunty",
        "uncle",
        "sister",
        "brother",
        "parents",
        "family",
        "staff",
        "advocate",
        "birthday",
        "christmas",
    }
)
SUSPECT_GIVERS: frozenset[str] = frozenset(
    {
        "he",
        "she",
        "they",
        "him",
        "them",
        "boyfriend",
        "girlfriend",
        "man",
        "men",
        "guy",
        "guys",
        "lad",
        "lads",
        "bloke",
        "someone",
        "somebody",
        "stranger",
        "strangers",
        "people",
        "older",
        "these",
        "friend",
        "friends",
        "mate",
        "mates",
        "person",
    }
)

# Ages: "he is 25 and im 14". Whose age a number is comes from the words just before it.
AGE_PERSONS: frozenset[str] = frozenset(
    {
        "he",
        "she",
        "boyfriend",
        "girlfriend",
        "partner",
        "man",
        "guy",
        "lad",
        "friend",
        "mate",
        "someone",
        "somebody",
        "person",
        "bloke",
        "woman",
        "bae",
        "crush",
        "fella",
    }
)
AGE_FILLERS: frozenset[str] = frozenset(
    {
        "only",
        "just",
        "like",
        "nearly",
        "almost",
        "about",
        "around",
        "over",
        "literally",
        "a",
        "actually",
        "turning",
        "turned",
        "now",
        "already",
    }
)
AGE_UNITS: frozenset[str] = frozenset({"yo", "yr", "yrs", "year", "years"})
# Words that make an adult's age a grooming cue when the child's own age is not given.
CONTACT_WORDS: frozenset[str] = frozenset(
    {
        "boyfriend",
        "girlfriend",
        "partner",
        "dating",
        "date",
        "seeing",
        "met",
        "meet",
        "meeting",
        "online",
        "talking",
        "chatting",
        "messaging",
        "messages",
        "snapchat",
        "snap",
        "instagram",
        "insta",
        "tiktok",
        "discord",
        "likes",
        "loves",
        "fancy",
        "fancies",
        "kiss",
        "kissed",
        "kissing",
        "sex",
        "relationship",
        "secret",
        "older",
    }
)

# ---------------------------------------------------------------------------------------------
# Folding text into words.
# ---------------------------------------------------------------------------------------------

_LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "һ": "h",
        "ӏ": "l",
        "ԛ": "q",
        "ԝ": "w",
        "ɡ": "g",
        "ɑ": "a",
        "ɩ": "i",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
        "ω": "w",
        "ς": "s",
        "μ": "u",
        "ѵ": "v",
        "ո": "n",
        "ս": "u",
    }
)
_LEET_I = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
_LEET_L = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "i",
    }
)
_LEET_CHARS = frozenset("013457@$!|")
_NO_SYMBOLS = str.maketrans("", "", "@$!|")
_WELSH_YN = re.compile(r"(?<=\w)['’‘ʼ`]n(?!\w)")  # Welsh "teimlo'n" is "teimlo yn"
_DROPPED = re.compile(r"['’‘ʼ`´*]")  # apostrophes, and the * in "sh*t"
_SEPARATORS = re.compile(r"(?:[^\w@$!|]|_)+")
_NUMBER_UNIT = re.compile(r"(\d+)(yo|yrs|yr|years|year|kms|km|pm|am|st|nd|rd|th|s)")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_DOUBLES = re.compile(r"([a-z])\1+")
_ASCII_WORD = re.compile(r"[a-z]+")

# Bounds that keep a very long message fast: typo correction stops after this many distinct
# words (exact matching still reads the whole message), and skips very long words.
MAX_FUZZY_WORDS = 2_000
MAX_TYPO_LENGTH = 16


def _squash(word: str) -> str:
    """Letters typed three or more times in a row as one ("diiiie" -> "die")."""
    return _REPEATS.sub(r"\1", word)


def _collapse(word: str) -> str:
    """Every doubled letter as one, to compare spellings ("kil" and "kill")."""
    return _DOUBLES.sub(r"\1", word)


def _prefold(text: str) -> str:
    """Unicode and case folding, look-alike letters, accents, apostrophes."""
    if text.isascii():  # nothing invisible, wide, look-alike or accented to fold
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", strip_invisible(text)).casefold()
        text = text.translate(_LOOKALIKES)
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return _DROPPED.sub("", _WELSH_YN.sub(" yn", text))


def _pieces(text: str) -> list[str]:
    """The typed words, split on spaces and punctuation but keeping leetspeak symbols."""
    pieces: list[str] = []
    for raw in _SEPARATORS.split(_prefold(text)):
        piece = raw.strip("!|")
        unit = _NUMBER_UNIT.fullmatch(piece)
        if unit:
            pieces.extend(unit.groups())
        elif piece and _ASCII_WORD.search(piece):
            pieces.append(piece)
        elif piece:
            pieces.append(piece.translate(_NO_SYMBOLS))
    return [p for p in pieces if p]


def _deletes(word: str, depth: int) -> set[str]:
    """The word with up to ``depth`` letters deleted, for typo look-ups."""
    found = {word}
    edge = {word}
    for _ in range(depth):
        edge = {w[:i] + w[i + 1 :] for w in edge for i in range(len(w))}
        found |= edge
    return found


def _distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbouring letters as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def _allowed_typos(word: str) -> int:
    """How many edits a key word tolerates."""
    return 2 if len(word) >= 9 else 1


class _Words:
    """Turns typed words into the words of the lists; built once from the lists."""

    def __init__(self, vocabulary: set[str], typo_words: tuple[str, ...]) -> None:
        self.vocabulary = vocabulary
        self.collapsed: dict[str, str] = {}
        for word in sorted(vocabulary):
            self.collapsed.setdefault(_collapse(word), word)
        self.typos: dict[str, set[str]] = {}
        for word in typo_words:
            for variant in _deletes(word, _allowed_typos(word)):
                self.typos.setdefault(variant, set()).add(word)

    def correct(self, word: str, fuzzy: bool) -> str:
        """A list word the typed word is a near spelling of, or the word itself."""
        if word in self.vocabulary or not word.isascii() or not word.isalpha():
            return word
        if word.endswith("in") and word + "g" in self.vocabulary:
            return word + "g"  # "goin", "cuttin"
        near = self.collapsed.get(_collapse(word))
        if near and max(len(near), len(word)) >= 4:
            return near
        if not fuzzy or not 5 <= len(word) <= MAX_TYPO_LENGTH:
            return word
        candidates: set[str] = set()
        for variant in _deletes(word, 2 if len(word) >= 8 else 1):
            candidates |= self.typos.get(variant, set())
        best = min(
            (c for c in candidates if _distance(word, c) <= _allowed_typos(c)),
            key=lambda c: (_distance(word, c), c),
            default=None,
        )
        return best or word


def _leet_variants(piece: str) -> tuple[str, ...]:
    """The piece with leetspeak read as letters; "1" may be an i or an l."""
    if not _LEET_CHARS.intersection(piece) or not _ASCII_WORD.search(piece):
        return (piece,)
    as_i = piece.translate(_LEET_I)
    as_l = piece.translate(_LEET_L)
    return (as_i,) if as_i == as_l else (as_i, as_l)


def _expand(word: str) -> list[str]:
    """Text-speak as the words it stands for."""
    return TEXT_SPEAK[word].split() if word in TEXT_SPEAK else [word]


def _join_pairs(words: list[str]) -> list[str]:
    """Two typed words that the lists spell as one ("my self" -> "myself")."""
    out: list[str] = []
    for word in words:
        if out and (out[-1], word) in JOINED:
            out[-1] = JOINED[(out[-1], word)]
        else:
            out.append(word)
    return out


@dataclass(frozen=True)
class _Folded:
    """A message ready for matching: its words, and text to search without spaces."""

    words: tuple[str, ...]
    runs: tuple[str, ...] = ()  # spaced-out letters joined up: "k i l l" -> "kill"
    long_words: tuple[str, ...] = ()  # long words not in the lists, maybe "killmyself"

    def __add__(self, other: _Folded) -> _Folded:
        """Two messages read as one."""
        return _Folded(
            self.words + other.words,
            self.runs + other.runs,
            self.long_words + other.long_words,
        )


def _fold(text: str, words: _Words | None) -> _Folded:
    """A message (or a list phrase, when ``words`` is None) as list words."""
    memo: dict[str, list[str]] = {}
    found_runs: list[str] = []
    long_words: list[str] = []
    letters: list[str] = []
    pieces: list[str] = []
    runs: set[str] = set()
    for piece in _pieces(text) + [""]:
        if len(piece) == 1 and (piece.isalpha() or piece in _LEET_CHARS):
            letters.append(piece)
            continue
        if len(letters) >= 3:  # spaced-out letters: "k i l l  m y s e l f"
            runs.add("".join(letters))
            pieces.append("".join(letters))
        else:
            pieces.extend(letters)
        letters = []
        if piece:
            pieces.append(piece)
    folded: list[str] = []
    for piece in pieces:
        if piece not in memo:
            memo[piece] = _fold_piece(piece, words, fuzzy=len(memo) < MAX_FUZZY_WORDS)
        result = memo[piece]
        long_unknown = len(result) == 1 and len(result[0]) >= 8
        if piece in runs:
            found_runs.append("".join(result))
        elif words and long_unknown and result[0] not in words.vocabulary:
            long_words.append(result[0])
        folded.extend(result)
    return _Folded(
        tuple(_join_pairs(folded)),
        tuple(dict.fromkeys(found_runs)),
        tuple(dict.fromkeys(long_words)),
    )


def _fold_piece(piece: str, words: _Words | None, fuzzy: bool) -> list[str]:
    """One typed piece as list words: leetspeak, stretched letters, text-speak, typos."""
    best: list[str] | None = None
    for variant in _leet_variants(piece):
        variant = _squash(variant)
        expanded = _expand(variant)
        if words is not None and len(expanded) == 1:
            expanded = _expand(words.correct(expanded[0], fuzzy))
        if best is None:
            best = expanded
        if words is None or all(w in words.vocabulary for w in expanded):
            return expanded
    return best or []


# ---------------------------------------------------------------------------------------------
# Compiling the phrase lists.
# ---------------------------------------------------------------------------------------------

_GAP = "..."
_NUMBER = "#"
# Shortest phrase looked for inside joined-up spaced letters, and inside a long unknown word
# (where shorter ones turn up by chance: "rapist" in "therapist").
_SPACELESS_MIN = 5
_SPACELESS_MIN_IN_WORDS = 7
_SPACELESS_MAX_FORMS = 400  # spellings of one phrase; more than this and it is not searched so


def _slot_options(slot: str) -> list[list[str]]:
    """Each "a/b" alternative of a list word, folded the same way a message is."""
    return [words for alt in slot.split("/") if (words := list(_fold(alt, None).words))]


@dataclass(frozen=True)
class _Phrase:
    """One compiled list phrase: its category, its text as written, and its regex."""

    category: str
    text: str
    regex: re.Pattern[str]
    first: frozenset[str]


def _compile_phrase(category: str, phrase: str) -> _Phrase | None:
    """A list phrase as a regex matched at a word start of the folded message."""
    parts: list[str] = []
    first: set[str] = set()
    for slot in phrase.split():
        if slot == _GAP:
            if parts:
                parts.append(r"(?: [^ ]+){0,3}")
            continue
        options = [[_NUMBER]] if _NUMBER in slot.split("/") else []
        options += _slot_options(slot.replace(_NUMBER, ""))
        if not options:
            continue
        spellings = sorted({" ".join(o) for o in options}, key=len, reverse=True)
        body = "|".join("[0-9]+" if s == _NUMBER else re.escape(s) for s in spellings)
        if not parts:
            first.update(o[0] for o in options)
        parts.append((" " if parts else "") + f"(?:{body})")
    if not parts:
        return None
    return _Phrase(category, phrase, re.compile("".join(parts) + r"(?![^ ])"), frozenset(first))


def _spaceless_forms(phrase: str) -> set[str]:
    """A phrase's spellings with the spaces taken out ("kill myself" -> "killmyself")."""
    if _GAP in phrase.split() or _NUMBER in phrase.replace("/", " ").split():
        return set()
    forms = {""}
    for slot in phrase.split():
        options = {"".join(o) for o in _slot_options(slot)}
        options |= {_DROPPED.sub("", alt.casefold()) for alt in slot.split("/")}
        forms = {f + o for f in forms for o in options}
        if len(forms) > _SPACELESS_MAX_FORMS:
            return set()
    return {f for f in forms if len(f) >= _SPACELESS_MIN}


def _trie_regex(forms: set[str]) -> str:
    """One regex for many fixed strings, shaped as a tree so each position is tried once."""
    trie: dict[str, dict] = {}
    for form in forms:
        node = trie
        for ch in form:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            body = f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return emit(trie)


class _Matcher:
    """Finds list phrases in a folded message: by first word, then by regex."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        compiled = [p for c, text in entries if (p := _compile_phrase(c, text))]
        # Phrases that fold to the same words ("wanna die", "want to die"): the first one counts.
        self.phrases = list({p.regex.pattern: p for p in reversed(compiled)}.values())[::-1]
        index: dict[str, list[_Phrase]] = {}
        for phrase in self.phrases:
            for word in phrase.first:
                index.setdefault(word, []).append(phrase)
        self.index = {word: tuple(found) for word, found in index.items()}
        forms: dict[str, _Phrase] = {}
        for phrase in self.phrases:
            for form in _spaceless_forms(phrase.text):
                forms.setdefault(form, phrase)
        self.forms = forms
        self.spaceless = re.compile("(?=(" + _trie_regex(set(forms)) + "))") if forms else None

    def find(self, text: str) -> Iterator[tuple[_Phrase, int, int]]:
        """Every phrase found, with where it starts and ends."""
        position = 0
        for word in text.split(" "):
            candidates = self.index.get(word, ())
            if word.isascii() and word.isdigit():
                candidates += self.index.get(_NUMBER, ())
            for phrase in candidates:
                match = phrase.regex.match(text, position)
                if match:
                    yield phrase, position, match.end()
            position += len(word) + 1

    def find_spaceless(self, chunk: str, shortest: int) -> Iterator[_Phrase]:
        """Phrases of at least ``shortest`` letters inside run-together text ("killmyself")."""
        if self.spaceless is not None:
            for match in self.spaceless.finditer(chunk):
                form = match.group(1)
                if form in self.forms and len(form) >= shortest:
                    yield self.forms[form]


def _vocabulary() -> set[str]:
    """Every word used in the lists, so typos can be corrected towards them."""
    found: set[str] = set()
    for phrase in (*(p for ps in PHRASES.values() for p in ps), *NOT_RISK):
        for slot in phrase.split():
            for option in _slot_options(slot):
                found.update(option)
    found.update(GIFT_VERBS, GIFT_SUBSTANCES, GIFT_PHONES, GIFT_SOFT, TRUSTED_GIVERS, SUSPECT_GIVERS)
    found.update(AGE_PERSONS, AGE_FILLERS, AGE_UNITS, CONTACT_WORDS)
    return {w for w in found if w.isalpha()}


_RISK = _Matcher([(c, p) for c in CATEGORIES for p in PHRASES[c]])
_NOT_RISK = _Matcher([("", p) for p in NOT_RISK])
_WORDS = _Words(_vocabulary(), TYPO_WORDS)
_GIFT = re.compile(
    r"(?<![^ ])(?P<verb>"
    + "|".join(GIFT_VERBS)
    + r") me (?:[^ ]+ ){0,3}?(?P<item>"
    + "|".join(sorted(GIFT_SUBSTANCES | GIFT_PHONES | GIFT_SOFT | {"to"}, key=len, reverse=True))
    + r")(?![^ ])"
)
_PAY_VERBS = frozenset({"pays", "paid", "pay", "paying"})

# ---------------------------------------------------------------------------------------------
# Finding risk.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triage:
    """The verdict on one message: whether it is urgent, the main concern and why."""

    urgent: bool
    category: str | None
    reasons: tuple[str, ...]


def _phrase_hits(text: str) -> list[tuple[str, str]]:
    """Risk phrases in the folded message, less those inside a NOT_RISK phrase."""
    safe = ((start, end) for _, start, end in _NOT_RISK.find(text))  # in order of start
    upcoming = next(safe, None)
    safe_until = -1  # the furthest end of a NOT_RISK phrase starting at or before here
    hits: dict[int, tuple[str, str]] = {}
    for phrase, start, end in _RISK.find(text):
        while upcoming is not None and upcoming[0] <= start:
            safe_until = max(safe_until, upcoming[1])
            upcoming = next(safe, None)
        if start not in hits and end > safe_until:
            hits[start] = (phrase.category, phrase.text)  # the first listed phrase per word
    return list(hits.values())


def _gift_hits(text: str) -> list[tuple[str, str]]:
    """Gifts, money or lifts from someone who is not a trusted adult."""
    hits: list[tuple[str, str]] = []
    for match in _GIFT.finditer(text):
        item = match.group("item")
        before = text[max(0, match.start() - 100) : match.start()].split()[-5:]
        trusted = bool(TRUSTED_GIVERS.intersection(before))
        if item == "to" and match.group("verb") not in _PAY_VERBS:
            continue
        if (
            item in GIFT_SUBSTANCES
            or (item in GIFT_PHONES and not trusted)
            or (SUSPECT_GIVERS.intersection(before) and not trusted)
        ):
            reason = "paid by someone to do things" if item == "to" else f"given by someone: {item}"
            hits.append(("exploitation", reason))
    return hits


def _age_hits(words: tuple[str, ...]) -> list[tuple[str, str]]:
    """An adult's age beside a child's, or an adult's age with a relationship or online contact."""
    children: list[int] = []
    adults: list[int] = []
    for index, word in enumerate(words):
        if not (word.isascii() and word.isdigit()) or not 8 <= int(word) <= 99:
            continue
        before = [w for w in words[max(0, index - 6) : index] if w not in AGE_FILLERS][-3:]
        if before[-2:] == ["i", "am"] or before[-1:] == ["me"]:
            children.append(int(word))
        elif before[-1:] in (["is"], ["are"], ["aged"]) and AGE_PERSONS.intersection(before):
            if not TRUSTED_GIVERS.intersection(words[max(0, index - 5) : index]):
                adults.append(int(word))
        elif AGE_UNITS.intersection(words[index + 1 : index + 2]):
            adults.append(int(word))
    child = min(children, default=None)  # the youngest age given makes the widest gap
    for adult in adults:
        if child is not None and adult - child >= 3 and (adult >= 18 or child <= 15):
            return [("exploitation", f"age gap: {adult} and {child}")]
    if not children and any(a >= 18 for a in adults) and CONTACT_WORDS.intersection(words):
        return [("exploitation", f"adult's age: {max(adults)}")]
    return []


def _hits(folded: _Folded) -> list[tuple[str, str]]:
    """Every (category, reason) found in a folded message."""
    text = " ".join(folded.words)
    hits = _phrase_hits(text)
    for chunk in folded.runs:
        hits.extend((p.category, p.text) for p in _RISK.find_spaceless(chunk, _SPACELESS_MIN))
    for chunk in folded.long_words:
        found = _RISK.find_spaceless(chunk, _SPACELESS_MIN_IN_WORDS)
        hits.extend((p.category, p.text) for p in found)
    hits.extend(_gift_hits(text))
    hits.extend(_age_hits(folded.words))
    return list(dict.fromkeys(hits))


def assess(text: str, previous: str | None = None) -> Triage:
    """Triage a child's message, also read together with their previous message if given."""
    current = _fold(text, _WORDS)
    hits = _hits(current)
    if previous and previous.strip():
        before = _fold(previous, _WORDS)
        joined = before + current
        already = set(_hits(before)) | set(hits)
        hits += [hit for hit in _hits(joined) if hit not in already]
    hits.sort(key=lambda hit: CATEGORIES.index(hit[0]))
    return Triage(
        urgent=bool(hits),
        category=hits[0][0] if hits else None,
        reasons=tuple(dict.fromkeys(reason for _, reason in hits)),
    )
