"""Write demo_pack/warm.jsonl: the pack's teacher-quality answers, each opened by one sentence that acknowledges
the resident's situation (the taste of the SIMULATED voter panel, arena/simulated_panel.py).

It stands in for a model that follows a system prompt asking for that opening, as qa.jsonl stands in for a strong
API teacher: the embedded 135M model does not follow such a prompt (docs/training.md, "The offline proof").
One opening per topic, chosen by keywords of the question; the answers are qa.jsonl's, unchanged.
    python scripts/make_demo_warm.py
"""

from __future__ import annotations

import json
from pathlib import Path

PACK = Path(__file__).resolve().parents[1] / "src" / "underdog" / "demo_pack"
OPENINGS = [  # (keywords in the question, opening): the first match wins
    (("ticket", "citation", "jaywalking", "fine"), "Getting a ticket is frustrating, I understand."),
    (("appeal", "assessment"), "Disputing an assessment can be stressful."),
    (("deadline", "register", "registration close", "voter"), "Deadlines like this can be stressful."),
    (("lose", "lost", "replace"), "Losing a card is frustrating."),
    (("marry", "marriage"), "Congratulations, and I understand you want the dates right."),
    (("dog",), "I understand, looking after a new dog is a lot."),
    (("form", "application", "apply"), "Paperwork can be confusing, so it makes sense to check first."),
    (("septic", "waste", "burn"), "I understand these household rules can be confusing."),
    (("cost", "fee", "charge", "how much", "pay"), "I understand that costs matter when you plan ahead."),
]
DEFAULT = "I understand you want to get this right."


def opening(question: str) -> str:
    q = question.lower()
    return next((text for words, text in OPENINGS if any(w in q for w in words)), DEFAULT)


def main() -> None:
    rows = [json.loads(line) for line in (PACK / "qa.jsonl").read_text().splitlines()]
    with (PACK / "warm.jsonl").open("w") as f:
        for row in rows:
            user, reply = row["messages"][0], row["messages"][-1]
            warm = {"role": "assistant", "content": f"{opening(user['content'])} {reply['content']}"}
            f.write(json.dumps({"messages": [user, warm]}) + "\n")


if __name__ == "__main__":
    main()
