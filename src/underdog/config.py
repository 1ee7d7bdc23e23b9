"""`underdog.yaml`: pydantic models for the project config, loading with one-line errors, and overrides.

Every section forbids unknown keys, so a typo such as `temprature` is reported with the key and the file line
instead of being silently ignored.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from underdog.errors import ConfigError
from underdog.textfile import read_user_text

CONFIG_NAME = "underdog.yaml"
NOT_A_PROJECT = f"not an underdog project (no {CONFIG_NAME} here or above): run `underdog init`"
ROLES = ("teacher", "judge", "student", "reference")
EMBEDDED_MODEL = "smollm2-135m"
GROUNDED_JUDGES = ("facts", "similarity")  # judges without a model (evaluate/judges/), reserved names
PEOPLE_JUDGE = "people"  # the voter-proxy judge fitted on the arena's votes (evaluate/judges/people.py), reserved
MODEL_FREE_JUDGES = (*GROUNDED_JUDGES, PEOPLE_JUDGE)  # judges that call no model


# sampling rules shared by every model's params, tuning grids and the autopilot (serve refuses the same values)
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationParams(Strict):
    """Sampling settings sent with every request to a model."""

    temperature: Temperature = 0.7
    top_p: TopP = 0.95
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0
    stop: list[str] | None = None


class ModelSpec(Strict):
    """One model, wherever it runs: a local HF model (+ PEFT adapter) or an API endpoint."""

    provider: str = "local"
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None  # Azure OpenAI
    adapter: str | None = None
    system_prompt: str | None = None
    params: GenerationParams = GenerationParams()
    concurrency: int = Field(8, ge=1)
    requests_per_minute: float | None = Field(None, gt=0)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(5, ge=0)
    price_per_1m_input: float | None = Field(None, ge=0)
    price_per_1m_output: float | None = Field(None, ge=0)
    batch_size: int = Field(8, ge=1)  # local models: requests generated together
    device: str | None = None  # local models: "cuda", "cpu"; default: cuda when available

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        from underdog.llm.registry import provider_names

        if value not in provider_names():
            raise ValueError(f"unknown provider {value!r} (known: {', '.join(provider_names())})")
        return value

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted 2024-10-21 as a date; Azure wants the text."""
        return value.isoformat() if isinstance(value, datetime.date) else value

    @model_validator(mode="after")
    def _api_needs_url(self) -> ModelSpec:
        if self.provider == "azure" and not (self.base_url and self.api_version):
            raise ValueError("provider 'azure' needs base_url (the resource endpoint) and api_version")
        return self

    def with_params(self, **changes: Any) -> ModelSpec:
        """A copy with some generation params replaced (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return self.model_copy(update={"params": self.params.model_copy(update=changes)})


class AnswerStyle(Strict):
    """How the teacher answers each generated question (the answer prompt)."""

    persona: str = "a friendly, knowledgeable assistant for the domain"
    length: str = "concise: 80-200 words"
    structure: str = "a one-sentence direct answer, then numbered steps when there is a procedure"
    empathy: str = "acknowledge the person's situation briefly when it is stressful"


class AugmentConfig(Strict):
    """Sizes of the optional slices `underdog augment` can mix in."""

    refusals: int = Field(12, ge=0)  # off-domain, harmful intent, others' personal data
    translation_share: float = Field(0.1, ge=0, le=1)  # share of the base examples translated per language
    localities: list[str] = ["Texas", "California", "New York", "Florida", "Ohio"]
    locality_share: float = Field(0.1, ge=0, le=1)
    summary_share: float = Field(0.1, ge=0, le=1)


class CurateConfig(Strict):
    """Quality rating, duplicate removal, format hygiene and decontamination."""

    rate: bool = True
    rating_threshold: float = Field(7.0, ge=0, le=10)
    rating_retries: int = Field(2, ge=0)
    near_dup_threshold: float = Field(0.8, gt=0, le=1)  # Jaccard of content-word stems (MinHash)
    decontam_threshold: float = Field(0.5, gt=0, le=1)
    semantic: bool = True  # the pass by meaning after MinHash's (all-MiniLM-L6-v2 embeddings; docs/data.md)
    semantic_dup_threshold: float = Field(0.86, gt=0, le=1)  # cosine; chosen on a planted set: docs/data.md
    semantic_decontam_threshold: float = Field(0.80, gt=0, le=1)
    min_answer_chars: int = Field(20, ge=0)
    max_answer_chars: int = Field(6000, ge=1)


class DataConfig(Strict):
    """Settings of the data stages (topics, generate, ingest, augment, curate, export)."""

    num_topics: int = Field(20, ge=1)
    questions_per_topic: int = Field(6, ge=1)
    topics: list[str] = []  # your own topics, merged into topics.yaml
    topic_rounds: int = Field(3, ge=1)  # teacher calls at most, to reach num_topics
    answer: AnswerStyle = AnswerStyle()
    chunk_size: int = Field(2000, ge=100)  # characters, for ingest
    chunk_overlap: int = Field(200, ge=0)
    pairs_per_chunk: int = Field(3, ge=1)
    augment: AugmentConfig = AugmentConfig()
    curate: CurateConfig = CurateConfig()
    validation_split: float = Field(0.1, ge=0, lt=1)  # export
    seed: int = 0


class SageMakerConfig(Strict):
    """Where `underdog train --sagemaker` sends a JumpStart training job (docs/training.md)."""

    role_arn: str | None = None  # the SageMaker execution role
    bucket: str | None = None  # S3 bucket for the data and the model artifacts
    prefix: str = "underdog"
    region: str = "us-east-1"
    model_id: str = "meta-textgeneration-llama-3-8b-instruct"
    instance_type: str = "ml.g5.12xlarge"
    volume_gb: int = Field(256, ge=1)
    max_runtime_s: int = Field(360000, ge=60)
    # The JumpStart container, training script and base weights for model_id in region: look them up once with
    # sagemaker.image_uris.retrieve / script_uris.retrieve / model_uris.retrieve (they change with versions).
    image_uri: str | None = None
    source_uri: str | None = None
    model_uri: str | None = None
    accept_eula: bool = False  # Llama models need the license accepted


# TRL's DPOTrainer loss types (`DPOConfig.loss_type`); several are summed with `dpo_loss_weights`
DpoLoss = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                  "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm"]


class TrainConfig(Strict):
    """LoRA fine-tuning hyperparameters, under the names SageMaker JumpStart users know (docs/training.md).

    Defaults follow JumpStart's Llama recipe, except `target_modules`: all linear layers of the block.
    """

    dataset: str | None = None  # default dataset version for `underdog train` (else the newest)
    epoch: int = Field(5, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    per_device_train_batch_size: int = Field(4, ge=1)
    per_device_eval_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_input_length: int = Field(-1, ge=-1)  # -1: min(1024, the model's maximum)
    validation_split_ratio: float = Field(0.2, ge=0, lt=1)
    train_data_split_seed: int = 0
    seed: int = 0
    max_train_samples: int = Field(-1, ge=-1)
    max_val_samples: int = Field(-1, ge=-1)
    max_steps: int = Field(-1, ge=-1)  # > 0 stops after this many optimizer steps (smoke tests, benchmarks)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler_type: str = "linear"  # any transformers SchedulerType: linear, cosine, constant_with_warmup...
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    # auto: flatten with flash-attn on a GPU, else group; flatten: TRL's padding-free packing (examples packed
    # into rows of max_input_length, each attending only to itself); group: length-grouped batches padded to their
    # longest; off: random batches padded (the plain stack)
    packing: Literal["auto", "flatten", "group", "off"] = "auto"
    liger: Literal["auto", "on", "off"] = "auto"  # Liger's Triton kernels; auto: on with liger-kernel and a GPU
    gradient_checkpointing: bool = False
    logging_steps: int = Field(1, ge=1)
    evals_per_epoch: int = Field(2, ge=1)
    save_steps: int = Field(50, ge=1)  # checkpoint every N steps (and at each epoch's end) for resuming
    overfit_gap: float = Field(0.5, gt=0)  # flag when eval loss - train loss exceeds this
    overfit_patience: int = Field(2, ge=1)  # ... or eval loss rose this many evals in a row while train fell
    overfit_min_rise: float = Field(0.05, ge=0)  # a rise counts above this many nats ...
    overfit_min_rise_ratio: float = Field(0.05, ge=0)  # ... and above this share of the minimum eval loss
    keep_best: bool | None = None  # keep the best-eval-loss adapter, not the last (default: with early_stopping)
    early_stopping: bool = False  # stop once the overfit flag is raised (the adapter is saved where it stopped)
    device: str | None = None  # "cuda", "cuda:1", "cpu"; default: cuda when available (one GPU per process)
    device_memory_gb: float | None = Field(None, gt=0)  # GB (10^9 bytes); refuse runs estimated above (default: free)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 from sm80, fp16 below, fp32 on CPU
    max_concurrent: int = Field(1, ge=1)  # sweeps: runs at once (at most one per GPU), like scarce instances
    # preference training (docs/training.md): `dpo` trains the adapter of run `from_run` on a preference dataset,
    # with that run as the reference policy; learning_rate and epoch default to 1e-3 and 4 for it when not set
    method: Literal["sft", "dpo"] = "sft"
    from_run: str | None = None  # dpo: the run whose adapter is trained and is the reference
    beta: float = Field(0.1, gt=0)  # dpo: how far the policy may move from the reference
    dpo_loss: list[DpoLoss] = ["sigmoid", "sft"]  # TRL's loss_type list: DPO's sigmoid loss + NLL on the chosen
    dpo_loss_weights: list[float] | None = None  # one weight per dpo_loss term (default: 1 each)
    report_to: list[Literal["mlflow", "wandb", "tensorboard", "trackio"]] = []  # experiment trackers (tracking.py)
    sagemaker: SageMakerConfig = SageMakerConfig()

    @field_validator("packing", mode="before")
    @classmethod
    def _packing_bool(cls, value: Any) -> Any:
        return {True: "auto", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("liger", mode="before")
    @classmethod
    def _liger_bool(cls, value: Any) -> Any:
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _dpo_losses(self) -> TrainConfig:
        if not self.dpo_loss:
            raise ValueError("dpo_loss: give at least one TRL loss type (e.g. [sigmoid, sft])")
        if self.dpo_loss_weights is not None and len(self.dpo_loss_weights) != len(self.dpo_loss):
            raise ValueError(f"dpo_loss_weights: {len(self.dpo_loss_weights)} weights for {len(self.dpo_loss)} "
                             "dpo_loss terms")
        return self


class EvaluateConfig(Strict):
    """Eval sets, answering and pairwise judging (docs/evaluation.md)."""

    evalset_size: int = Field(50, ge=1)  # questions per generated eval set (the league used 50)
    evalset: str | None = None  # default eval set (else the newest)
    reference: str = "reference"  # what candidates are judged against
    judges: list[str] = ["judge"]  # a jury: roles / models, the grounded `facts`, `similarity`, and `people`
    judge_weights: dict[str, float] = {}  # a judge's vote in the jury (default 1 each: a plain majority)
    rubric: list[str] = ["correctness", "helpfulness", "empathy", "clarity", "conciseness"]
    judge_retries: int = Field(2, ge=0)  # re-asks after an unparseable verdict, then it is recorded as an error
    similarity_margin: float = Field(0.02, ge=0.0, le=1.0)  # `similarity` judge: a closer answer by less is a tie
    answer_max_tokens: int | None = Field(None, ge=1)  # cap answer length (default: each model's max_tokens)
    people_min_votes: int = Field(40, ge=2)  # `people` judge: decisive votes it needs before it votes (else abstains)
    people_margin: float = Field(0.05, ge=0.0, lt=0.5)  # `people` judge: |P(first preferred) - 0.5| below is a tie
    bootstrap_rounds: int = Field(10_000, ge=100)
    seed: int = 0

    @model_validator(mode="after")
    def _weights_of_members(self) -> EvaluateConfig:
        strangers = [name for name in self.judge_weights if name not in self.judges]
        if strangers:
            raise ValueError(f"judge_weights: {', '.join(strangers)} not in evaluate.judges")
        if any(w < 0 for w in self.judge_weights.values()):
            raise ValueError("judge_weights must be >= 0")
        return self


class TuneConfig(Strict):
    """Final-round tuning: system prompts x temperature x top_p, each cell judged against the reference
    (docs/arena.md)."""

    prompts: str = "prompts.yaml"  # candidate system prompts: YAML list / mapping, or text split by `---` lines
    temperatures: list[Temperature] = [0.3, 0.7]
    top_ps: list[TopP] = [0.9, 1.0]
    best_of: int = Field(1, ge=1)  # > 1: n samples per question, the judge keeps the best
    evalset: str | None = None  # default: evaluate.evalset, else the newest

    @field_validator("temperatures", "top_ps")
    @classmethod
    def _not_empty(cls, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("needs at least one value")
        return values


class ArenaConfig(Strict):
    """Blind human voting arena (docs/arena.md)."""

    host: str = "127.0.0.1"  # 0.0.0.0 lets other machines vote
    port: int = Field(8765, ge=1, le=65535)
    weights: dict[str, float] = {"human": 0.4, "llm": 0.4, "audience": 0.2}  # the league's final
    bootstrap_rounds: int = Field(100, ge=10)

    @field_validator("weights")
    @classmethod
    def _known_components(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - {"human", "llm", "audience"}
        if unknown:
            raise ValueError(f"unknown component(s) {', '.join(sorted(unknown))} (human, llm, audience)")
        if any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError("weights must be >= 0 and not all zero")
        return weights


class AutopilotConfig(Strict):
    """What `underdog autopilot` builds and searches, at most (budgets shrink it; docs/autopilot.md)."""

    topics: int = Field(8, ge=0)  # topics to expand, then generate from (0: no generated Q&A)
    questions_per_topic: int = Field(4, ge=1)
    documents: list[str] = []  # files to ingest into grounded Q&A (paths relative to the project)
    datasets: list[str] = []  # your own dataset versions, added to every variant as they are (not curated)
    variants: dict[str, list[str]] = {"plain": [], "refusals": ["refusals"]}  # augment slices per data variant
    evalset: str | None = None  # the held-out questions (an eval set); default: generated with an answer key
    evalset_size: int = Field(40, ge=4)
    test_share: float = Field(0.5, gt=0, lt=1)  # questions kept for the one final test; the rest is the dev split
    trials: int = Field(6, ge=1)  # configurations trained at the first rung
    min_epochs: int = Field(1, ge=1)  # epochs of the first rung
    max_epochs: int = Field(4, ge=1)  # epochs of the last rung
    reduction_factor: int = Field(2, ge=2)  # each rung keeps the best 1/reduction_factor
    space: dict[str, Any] = {"learning_rate": [1e-4, 2e-4, 5e-4], "lora_r": [8, 16]}  # like a sweep's search.space
    fixed: dict[str, Any] = {}  # train overrides for every run
    prompts: list[str] = []  # system prompts to try on the pick (default: none, and one written for the domain)
    temperatures: list[Temperature] | None = None  # default: tune.temperatures
    top_ps: list[TopP] | None = None  # default: tune.top_ps
    seed: int = 0

    @model_validator(mode="after")
    def _rungs(self) -> AutopilotConfig:
        if self.max_epochs < self.min_epochs:
            raise ValueError(f"max_epochs ({self.max_epochs}) is below min_epochs ({self.min_epochs})")
        if not self.variants:
            raise ValueError("variants: name at least one data variant (e.g. plain: [])")
        return self


class Config(Strict):
    """The whole `underdog.yaml`."""

    domain: str
    models: dict[str, ModelSpec]
    budget_usd: float | None = Field(None, ge=0)
    stage_budgets_usd: dict[str, float] = {}
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    tune: TuneConfig = TuneConfig()
    arena: ArenaConfig = ArenaConfig()
    autopilot: AutopilotConfig = AutopilotConfig()

    @field_validator("models")
    @classmethod
    def _all_roles(cls, models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        missing = [role for role in ROLES if role not in models]
        if missing:
            raise ValueError(f"missing role(s): {', '.join(missing)}")
        return models


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping gives the same key twice (YAML would silently keep the last)."""


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue
            if key in seen:
                raise DuplicateKeyError(None, None, f"duplicate key {key!r} (also on line {seen[key] + 1})",
                                        key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML `text` from `path` (duplicate keys refused); ConfigError `file:line: problem`."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        message = problem if isinstance(exc, DuplicateKeyError) else f"not valid YAML ({problem})"
        raise ConfigError(f"{path}{where}: {message}") from None


def load_config(path: Path, overrides: list[str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError with one line naming the file, key and line (or the
    `--set` override at fault)."""
    if not path.exists():
        raise ConfigError(NOT_A_PROJECT)
    text = read_user_text(path, error=ConfigError, option=None)
    data = load_yaml(text, path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    data = apply_overrides(data, overrides or [])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, text, overrides or [])) from None
    _check_judges(config, path, text, overrides or [])
    return config


def known_judge(name: str, models: dict[str, ModelSpec]) -> bool:
    """A judge is a grounded judge, a configured model, `provider:model`, a model path / HF id, or the
    embedded model; anything else is most likely a typo."""
    return name in MODEL_FREE_JUDGES or name in models or name == EMBEDDED_MODEL or ":" in name or "/" in name


def _check_judges(config: Config, path: Path, text: str, overrides: list[str]) -> None:
    for index, name in enumerate(config.evaluate.judges):
        if not known_judge(name, config.models):
            key = f"evaluate.judges.{index}"
            from_override = any(o.split("=", 1)[0].strip().startswith("evaluate") for o in overrides)
            line = None if from_override else _yaml_line(text, ["evaluate", "judges"])
            where = "--set" if from_override else f"{path}:{line}" if line else str(path)
            raise ConfigError(f"{where}: {key}: unknown judge {name!r} (use a role of `models`, "
                              f"{', '.join(MODEL_FREE_JUDGES)}, provider:model or a model path)")


def describe_validation_error(exc: ValidationError, path: Path, text: str, overrides: list[str] = ()) -> str:
    """One line: `file:line: key.path: what is wrong` for the first error (+ how many more); a key that came
    from a `--set key=value` override is named as such instead of a file line."""
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"]]
    key = ".".join(loc) or "(top level)"
    unknown = err["type"] == "extra_forbidden"
    override = next((o for o in overrides if _overrides(o.split("=", 1)[0].strip(), key, unknown)), None)
    line = None if override else _yaml_line(text, loc)
    where = f"--set {override!r}" if override else f"{path}:{line}" if line else str(path)
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "missing":
        message = "missing required key"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], dict | list):
            message += f" (got {err['input']!r})"
    more = len(exc.errors()) - 1
    return f"{where}: {key}: {message}" + (f" (+{more} more problem{'s' * (more > 1)})" if more else "")


def _overrides(override_key: str, key: str, unknown: bool) -> bool:
    """Whether a `--set override_key=...` set `key` (or a section holding it), or made the `unknown` key (the
    new section `x` of `--set x.y.z=1`)."""
    return key == override_key or key.startswith(override_key + ".") or (
        unknown and override_key.startswith(key + "."))


def _yaml_line(text: str, loc: list[str]) -> int | None:
    """The 1-based line of the deepest key of `loc` that exists in the YAML text."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == part), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def apply_overrides(data: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply dotted `key=value` overrides (value parsed as YAML) to a config mapping; ConfigError naming the
    argument at fault (`--set 'key=value'`)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep:
            raise ConfigError(f"{source} {item!r}: not of the form key=value")
        if not all(part.strip() for part in parts):
            problem = f"the key {key.strip()!r} has an empty part" if key.strip() else "the key is empty"
            raise ConfigError(f"{source} {item!r}: {problem}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} {item!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)})"
                              " (quote it)") from None
        _section(data, parts[:-1], f"{source} {item!r}")[parts[-1]] = value
    return data


def _section(data: dict, parts: list[str], where: str) -> dict:
    target = data
    for part in parts:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{where}: {part!r} is not a section")
    return target


def render_default_config(domain: str) -> str:
    """The commented `underdog.yaml` that `underdog init` writes; every role uses the embedded model."""
    template = (Path(__file__).parent / "templates" / "underdog.yaml").read_text()
    return template.replace("{{domain}}", domain.replace('"', "'"))
