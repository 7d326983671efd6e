"""Three evaluation rows and a scripted model for them, shared by the eval library and CLI reliability tests: q1 the
rule accepts, q2 ("NYC" for "New York City") the rule rejects and a judge decides, q3 a DocMath number."""

from __future__ import annotations

ROWS = [
    {"id": "q1", "benchmark": "hotpotqa", "question": "Capital of France?", "context": "Paris is the capital.",
     "answers": ["Paris"]},
    {"id": "q2", "benchmark": "hotpotqa", "question": "Largest US city?", "context": "NYC is big.",
     "answers": ["New York City"]},  # the model says "NYC": rule 0, the judge decides
    {"id": "q3", "benchmark": "docmath", "question": "Total?", "context": "It is 12.", "answers": ["12"]},
]
REPLIES = {"Capital of France?": "Paris", "Largest US city?": "NYC", "Total?": "12"}


def model(messages: list[dict]) -> str:
    """The scripted model's reply to the row whose question is in the last message."""
    user = messages[-1]["content"]
    answer = next(a for q, a in REPLIES.items() if q in user)
    return f"<think>short</think>Therefore, the answer is {answer}."
