"""`underdog topics`: expand the domain into categories and subtopics with the teacher, into `topics.yaml`.

    topics = expand_topics(project, size=140, extra=["food trucks"])   # writes topics.yaml, returns [Topic]
    topics = load_topics(project)                                         # what `generate` uses

Uses the seed blog's few-shot prompt (domain + the user's own topics + "Categorize them, for example ...").
The user's topics (config `data.topics`, `extra`, and whatever an existing topics.yaml holds) always stay;
teacher topics are added round-robin across categories until `size`, dropping near-duplicates; while fewer than
`size`, another round (up to `data.topic_rounds`) asks for aspects not yet covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from underdog.data.dedup import NearDupIndex, normalize
from underdog.data.parse import parse_categories
from underdog.data.prompts import PROMPT_VERSION, render
from underdog.errors import UnderdogError
from underdog.project import Project
from underdog.textfile import read_user_text

TOPICS_FILE = "topics.yaml"
YOUR_TOPICS = "Your topics"
HEADER = "# Topics for `underdog generate`: edit freely (add, remove, rename); categories group subtopics.\n"


@dataclass(frozen=True)
class Topic:
    category: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.category} / {self.name}"


def topics_path(project: Project) -> Path:
    return project.root / TOPICS_FILE


def load_topics(project: Project) -> list[Topic]:
    """The topics of `topics.yaml` (raises a one-line error when it is missing or malformed)."""
    path = topics_path(project)
    if not path.exists():
        raise UnderdogError(f"{path}: not found (run `underdog topics` first, or write it by hand)")
    try:
        data = yaml.safe_load(read_user_text(path, option=None)) or {}
        categories = data.get("categories") or {}
        topics = [Topic(str(cat), str(name)) for cat, names in categories.items() for name in names or []]
    except (yaml.YAMLError, AttributeError, TypeError) as exc:
        raise UnderdogError(f"{path}: expected `categories: {{category: [subtopic, ...]}}` ({exc})") from None
    if not topics:
        raise UnderdogError(f"{path}: has no topics")
    return topics


def write_topics(project: Project, topics: list[Topic]) -> Path:
    categories: dict[str, list[str]] = {}
    for topic in topics:
        categories.setdefault(topic.category, []).append(topic.name)
    body = {"domain": project.config.domain, "prompt_version": PROMPT_VERSION, "categories": categories}
    path = topics_path(project)
    path.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120))
    return path


def expand_topics(project: Project, size: int | None = None, extra: list[str] | None = None,
                  teacher: str = "teacher") -> list[Topic]:
    """Merge the user's topics with the teacher's categories/subtopics (deduplicated), write topics.yaml."""
    size = size or project.config.data.num_topics
    own = _own_topics(project, extra or [])
    merged = _Merger(own)
    llm = project.llm(teacher, stage="topics")
    seeds = ", ".join(t.name for t in own) or "(none yet)"
    prompt = render("topics", domain=project.config.domain, seed_topics=seeds)
    for round_ in range(project.config.data.topic_rounds):
        if len(merged.topics) >= size:
            break
        seed = (llm.spec.params.seed or 0) + round_  # a fresh sample per round, from APIs too
        covered = "; ".join(t.name for t in merged.topics)[:3000]
        more = render("topics_more", covered=covered) if round_ else ""
        reply = llm.batch([prompt + more], samples=[round_], errors="return", seed=seed)[0]
        if reply.error and round_ == 0:  # say why, instead of "no parseable topics" or the user's topics alone
            raise UnderdogError(f"the teacher failed: {reply.error}")
        if reply.error:
            break  # keep what earlier rounds found
        merged.add_round(parse_categories(reply.text), size)
    if not merged.topics:
        raise UnderdogError("the teacher produced no parseable topics; add your own under data.topics "
                            "in underdog.yaml or pass --topic")
    write_topics(project, merged.topics)
    return merged.topics


def _own_topics(project: Project, extra: list[str]) -> list[Topic]:
    existing = load_topics(project) if topics_path(project).exists() else []
    return existing + [Topic(YOUR_TOPICS, name) for name in [*project.config.data.topics, *extra]]


class _Merger:
    """Accumulates topics, dropping exact and near duplicates."""

    def __init__(self, own: list[Topic]):
        self.topics: list[Topic] = []
        self.index = NearDupIndex(threshold=0.8)
        for topic in own:
            self.add(topic)

    def add(self, topic: Topic) -> bool:
        name = topic.name.strip()
        key = normalize(name)
        if not key or len(name) > 120 or key in self.index.features or self.index.matches(name):
            return False
        self.index.add(key, name)
        self.topics.append(Topic(topic.category.strip() or "General", name))
        return True

    def add_round(self, categories: dict[str, list[str]], size: int) -> None:
        """Round-robin over categories, so a cap still covers every category."""
        queues = [[Topic(cat, sub) for sub in subs or [cat]] for cat, subs in categories.items()]
        while any(queues) and len(self.topics) < size:
            for queue in queues:
                if queue and len(self.topics) < size:
                    self.add(queue.pop(0))
