"""A corpus the project wrote: thirty short documents about a fictional organization, the
Larkspur Cooperative of Velmora, each holding facts found in no other, and thirty questions
whose answer sits in exactly one document. Questions are worded apart from their document
(other verbs, synonyms, reordered clauses), so retrieval cannot succeed by copying it.

QUESTIONS rows are (question, file name, the fact an answer must contain).
"""

from __future__ import annotations

from pathlib import Path

DOCUMENTS = {
    "founding.md": """# Founding of the Larkspur Cooperative

The Larkspur Cooperative was founded in 1987 by Ines Aldana and Tomas Rheel.

Its first home was a disused textile mill on Quarry Lane in Velmora, rented for one symbolic
crown a year from the town council.
""",
    "mission.md": """# Mission

We exist to restore the wetlands around Lake Orrin and to teach our neighbours how to grow
food without poisoning the water.

Our motto is "Roots before roofs".
""",
    "membership.md": """# Membership

Anyone living in the Velmora district can join. Annual dues are 45 crowns;
students pay 20 crowns. Members vote on the yearly plan at the spring assembly.
""",
    "board.md": """# The Board

The cooperative is governed by a board of seven directors, elected by the members for
three-year terms. Marguerite Oyelaran has chaired the board since 2019.
""",
    "headquarters.md": """# Headquarters

In 2011 the headquarters moved from the mill to the Glasshouse building at 14 Ferrow Street,
which has a rooftop greenhouse used for seedlings.
""",
    "seed-library.md": """# Seed Library

Our seed library holds 3,200 varieties of heirloom seeds. Members borrow seeds in spring and
return a handful from their own harvest in autumn.
""",
    "beekeeping.txt": """Beekeeping

The cooperative keeps 40 hives on the eastern meadow. The honey is sold under the name
Meadowgold, about 600 jars a year, and the proceeds pay for the hives' upkeep.
""",
    "newsletter.md": """# Newsletter

The Stem is published four times a year, edited by Piet Vannuk, and mailed to 2,400
subscribers.
""",
    "volunteering.md": """# Volunteering

New volunteers must attend a safety induction on a Saturday morning before their first shift.
Volunteers must be at least 16 years old, and wear the orange vests kept by the door.
""",
    "budget.md": """# Budget 2023

The 2023 budget was 1.2 million crowns. Sixty percent came from grants; the largest grant came
from the Halvern Foundation.
""",
    "reading-room.html": """<html><head><title>Reading Room</title></head><body>
<h1>Reading Room</h1>
<p>The reading room is open Tuesday to Saturday, 9:00 to 17:00.</p>
<p>It closes for the whole of August for the yearly inventory.</p>
</body></html>
""",
    "festival.md": """# Harvest Lantern Festival

The Harvest Lantern Festival takes place on the last Saturday of September. Children float
paper lanterns down the mill canal at dusk.
""",
    "water-lab.md": """# Water Laboratory

Dr. Keiko Saramund leads the water lab, which tests 150 samples a month for nitrates from the
streams that feed Lake Orrin.
""",
    "solar.md": """# Solar Power

In 2016 we installed 280 solar panels on the roof of the old mill. They generate about 95 MWh
a year; the surplus is sold to the grid.
""",
    "mascot.txt": """Our Mascot

The mascot is a grey heron named Bartholomew. A carved wooden statue of him, by the sculptor
Alma Trez, greets visitors at the entrance.
""",
    "partnerships.md": """# Partnerships

Since 2008 we have worked with the University of Calderra on soil research, and together we
teach a joint master's course in regenerative agriculture.
""",
    "tool-lending.md": """# Tool Lending

The tool shed lends 120 tools to members. Tools may be kept for two weeks at most; the late fee
is 1 crown per day.
""",
    "composting.html": """<html><head><title>Composting</title></head><body>
<h1>Community Composting</h1>
<p>Our three-bin compost system turns 18 tonnes of food waste into soil each year.</p>
<h2>Finished compost</h2>
<p>Members take finished compost for free.</p>
</body></html>
""",
    "children.md": """# Little Sprouts

Little Sprouts is our programme for children aged 5 to 10. Groups of twelve meet on Wednesday
afternoons in the garden.
""",
    "award.md": """# The Verdant Prize

In 2021 the cooperative won the Verdant Prize for its wetland restoration. The 50,000 crowns of
prize money paid for the boardwalk across the reed beds.
""",
    "staff.txt": """Staff

The cooperative has 14 paid staff and about 230 active volunteers. The operations manager is
Lucan Petrossi.
""",
    "bylaws.md": """# Bylaws

Changing the bylaws needs a two-thirds majority of the votes cast at a general assembly, with a
quorum of at least 100 members present.
""",
    "orchard.md": """# Orchard

The orchard has 85 apple trees of old varieties, among them the Velmora Russet. The cider is
pressed in October.
""",
    "repair-cafe.html": """<html><head><title>Repair Cafe</title></head><body>
<h1>Bicycle Repair Café</h1>
<p>The bicycle repair café runs on the first Sunday of every month. It is free; bring your own
spare parts. Our mechanic, Oona Castell, shows you how.</p>
</body></html>
""",
    "archive.md": """# Photo Archive

The archive holds 1,900 photographs, digitised in 2020. They were donated by the photographer
Emil Sarko.
""",
    "weather-station.txt": """Weather Station

The weather station on the mill tower records rainfall and wind. Its record rainfall was 112 mm
on 3 July 2014.
""",
    "canteen.md": """# The Green Ladle

Our canteen, The Green Ladle, serves vegetarian lunches cooked by chef Rosalind Mbeki. A bowl
of soup costs 4 crowns.
""",
    "logo.md": """# Logo

The logo was redesigned in 2015 by Hugo Ferrand: a green larkspur flower inside a circle.
""",
    "privacy.html": """<html><head><title>Privacy</title></head><body>
<h1>Privacy</h1>
<p>Member data is stored on servers in Velmora and is deleted two years after a membership
ends. Questions go to our privacy officer, Nadia Kell.</p>
</body></html>
""",
    "expansion.txt": """Expansion

By 2027 we plan to open a second site in the village of Bramwick, in the former railway
station.
""",
}

QUESTIONS = [
    (
        "Who started Larkspur, and what sort of building was its first home?",
        "founding.md",
        "Ines Aldana",
    ),
    (
        "What motto sums up what the organisation is trying to do?",
        "mission.md",
        "Roots before roofs",
    ),
    ("How much does a student pay each year to join?", "membership.md", "20 crowns"),
    ("For how long does a director serve once elected?", "board.md", "three-year"),
    ("What is the street address of the main office?", "headquarters.md", "14 Ferrow Street"),
    ("How many kinds of old-fashioned seeds can members borrow?", "seed-library.md", "3,200"),
    ("Under what brand is the co-op's honey sold?", "beekeeping.txt", "Meadowgold"),
    ("How often does The Stem come out, and who edits it?", "newsletter.md", "Piet Vannuk"),
    ("What is the youngest age at which someone may volunteer?", "volunteering.md", "16 years"),
    ("Which foundation gave the biggest grant?", "budget.md", "Halvern Foundation"),
    ("On which days can I visit the reading room?", "reading-room.html", "Tuesday to Saturday"),
    ("When is the lantern festival held?", "festival.md", "last Saturday of September"),
    ("Who is in charge of the lab that checks the water?", "water-lab.md", "Keiko Saramund"),
    ("How much electricity do the panels on the roof produce annually?", "solar.md", "95 MWh"),
    ("What is the heron by the entrance called?", "mascot.txt", "Bartholomew"),
    (
        "Which university does the cooperative study soil with?",
        "partnerships.md",
        "University of Calderra",
    ),
    ("What is the charge for bringing a tool back late?", "tool-lending.md", "1 crown per day"),
    ("How much food waste gets composted every year?", "composting.html", "18 tonnes"),
    ("Which weekday do the Little Sprouts meet on?", "children.md", "Wednesday"),
    ("What did the Verdant Prize money pay for?", "award.md", "boardwalk"),
    ("How many paid employees are there?", "staff.txt", "14 paid staff"),
    ("What share of the votes is needed to amend the bylaws?", "bylaws.md", "two-thirds"),
    ("Which traditional apple variety grows in the orchard?", "orchard.md", "Velmora Russet"),
    ("When does the bike repair café take place?", "repair-cafe.html", "first Sunday"),
    ("Who gave the photographs to the archive?", "archive.md", "Emil Sarko"),
    (
        "What is the heaviest rainfall the weather station has measured?",
        "weather-station.txt",
        "112 mm",
    ),
    ("What does a bowl of soup cost in the canteen?", "canteen.md", "4 crowns"),
    ("Who designed the current logo?", "logo.md", "Hugo Ferrand"),
    ("How long is personal data kept after someone leaves?", "privacy.html", "two years"),
    ("Where will the second site open?", "expansion.txt", "Bramwick"),
]


def write_corpus(folder: Path) -> Path:
    """Write the thirty documents into `folder` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
