"""Versioned prompt templates of the data stages. Bump PROMPT_VERSION whenever a template changes: every
generated example records the version it was made with (`meta.prompt_version`).

Templates are plain `str.format` strings; `render(name, **fields)` fills one in.
"""

from __future__ import annotations

PROMPT_VERSION = "data-v1"

# Personas and tones mixed into question generation so questions sound like different real people.
PERSONAS = [
    "a first-time small business owner", "a retired veteran", "a college student", "a recent immigrant",
    "a busy parent of two", "a landlord", "a renter", "a senior citizen with limited internet access",
    "a contractor", "a nonprofit volunteer", "someone who just moved to the area", "a person with a disability",
]
TONES = ["hurried", "confused", "polite", "frustrated", "worried", "matter-of-fact"]

TOPICS = """{domain}

I am building a dataset that helps people get things done in this domain.
What aspects should it cover? I have a few, listed below.

{seed_topics}

Think about all such aspects someone would reach out about, just like I have written.
Categorize them, for example:
1. Business
- business licensing
- business permits

And so on, for all possible things one would likely reach out about. Answer only with the numbered categories
and their "- " subtopics."""

TOPICS_MORE = """

These are already covered, so list other aspects, in new categories where they fit: {covered}"""

QUESTIONS = """Domain: {domain}
Topic: {topic}

Write {n} realistic questions that real people would ask about this topic, in their own words.
Vary who asks and how. Use these askers: {askers}.
Some questions describe a concrete situation ("I want to open a food truck..."), some are short and direct.
Answer only with a JSON array of {n} strings."""

QUESTION_SINGLE = """You are {asker} and you feel {tone}. You need help with: {topic} ({domain}).
Write the one question you would ask. Answer only with the question."""

ANSWER_SYSTEM = """You are {persona} in this domain: {domain}.
Answer the user's question helpfully and accurately.
Length: {length}.
Structure: {structure}.
Tone: {empathy}.
Do not start with a header such as "### ANSWER" or "Answer:"; do not mention that you are an AI."""

CHUNK_QA = """Here is a passage from {source}:

<passage>
{chunk}
</passage>

Write {n} question-answer pairs that a person could ask and that the passage answers. Each answer must be
grounded in the passage only. Answer only with a JSON array of objects with keys "question" and "answer"."""

CHUNK_QUESTION = """Here is a passage from {source}:

<passage>
{chunk}
</passage>

Write one question that a person could ask and that this passage answers. Answer only with the question."""

CHUNK_ANSWER = """Answer the question using only this passage from {source}.

<passage>
{chunk}
</passage>

Question: {question}"""

REFUSAL_QUESTIONS = """Domain of the assistant: {domain}

Write {n} questions that such an assistant must decline: {kind}.
Make them realistic and varied. Answer only with a JSON array of {n} strings."""

REFUSAL_KINDS = {
    "off_domain": "questions unrelated to the domain (sports, celebrities, homework, recipes)",
    "harmful": "requests with harmful or illegal intent (forging documents, evading inspections, fraud)",
    "personal_data": "requests for other people's personal information (a neighbour's address, income, records)",
}

REFUSAL_ANSWER_SYSTEM = """You are an assistant for: {domain}.
The user's request is outside what you can help with ({kind}). Decline politely in two or three sentences,
without lecturing, and redirect the person to what you can help with in this domain."""

TRANSLATE = """Translate the following text into {language}. Keep names, numbers and formatting.
Answer only with the translation.

{text}"""

LOCALITY = """Rewrite this question so that it is asked by someone in {locality}, mentioning the place naturally.
Answer only with the rewritten question.

{question}"""

SUMMARY = """Summarize the following answer in two or three plain sentences that still answer the question.
Answer only with the summary.

Question: {question}
Answer: {answer}"""

RATING = """Rate this question-answer pair for a training dataset about: {domain}.

Question: {question}
Answer: {answer}

Score it on this rubric:
- accuracy 0-3 (are the facts correct?)
- relevance 0-2 (does it answer the question asked, within the domain?)
- clarity 0-2 (is it clear and well organised?)
- usefulness 0-3 (would it help the person?)
Answer only with JSON: {{"accuracy": n, "relevance": n, "clarity": n, "usefulness": n, "total": n}}"""

TEMPLATES = {
    "topics": TOPICS, "topics_more": TOPICS_MORE, "questions": QUESTIONS, "question_single": QUESTION_SINGLE,
    "answer_system": ANSWER_SYSTEM, "chunk_qa": CHUNK_QA, "chunk_question": CHUNK_QUESTION,
    "chunk_answer": CHUNK_ANSWER,
    "refusal_questions": REFUSAL_QUESTIONS, "refusal_answer_system": REFUSAL_ANSWER_SYSTEM,
    "translate": TRANSLATE, "locality": LOCALITY, "summary": SUMMARY, "rating": RATING,
}


def render(name: str, **fields: object) -> str:
    """Fill in template `name`."""
    return TEMPLATES[name].format(**fields)
