"""The autopilot's data variants: for each `autopilot.variants` entry, the made examples plus its augment slices,
curated, plus your own `autopilot.datasets` as they are (your data is trusted: curation would decontaminate
away paraphrases of the facts you want learned). A variant with the same examples as another is not searched.
"""

from __future__ import annotations

import math
from typing import Any

from underdog.autopilot.base import Estimate, Pricer, Sizes
from underdog.autopilot.context import Budget, Context
from underdog.autopilot.names import MADE, YOURS, variant_dataset, variant_made
from underdog.autopilot.sources import guarded, made_count, made_datasets, pool_size
from underdog.data.augmentation import augment, slice_label
from underdog.data.curation import curate
from underdog.data.dataset import Example, list_datasets, load_dataset, load_manifest, save_dataset
from underdog.errors import ConfigError, UnderdogError
from underdog.project import Project


class Variants:
    key, title = "variants", "data variants: augment, curate"
    artifact = "a dataset per data variant, autopilot-<variant> (made + augment slices, curated, + yours)"

    def estimate(self, ctx: Context, sizes: Sizes) -> list[Estimate]:
        project, s = ctx.project, ctx.settings
        price, datasets, pool = Pricer(project), set(list_datasets(project.root)), pool_size(ctx, sizes)
        rows = []
        for name, slices in s.variants.items():
            calls = sum(slice_calls(project, slice_kind(name, spec, datasets), pool) for spec in slices)
            row = price(f"augment:{name}", "augment", f"augment {name}: {', '.join(slices) or 'nothing'}",
                        "teacher", calls, 300)
            row.done = not slices or variant_dataset(name) in datasets
            rows.append(row)
        curation = project.config.data.curate
        rated = made_count(ctx, sizes) * (1 + curation.rating_retries / 4)
        row = price("curate", "curate", "curate: rate every made example" if curation.rate else "curate (no rating)",
                    "teacher", math.ceil(rated) if curation.rate else 0, 500)
        row.done = all(variant_dataset(name) in datasets for name in s.variants)
        return [*rows, row]

    def done(self, ctx: Context) -> bool:
        return ctx.finished(self.key)

    def run(self, ctx: Context, budget: Budget) -> None:
        root = ctx.project.root
        trusted = [e for name in ctx.cfg.datasets for e in load_dataset(root, name)]
        made = made_datasets(ctx)
        if made and MADE not in list_datasets(root):
            examples = [e for name in made for e in load_dataset(root, name)]
            save_dataset(root, MADE, examples, parent=made, recipe={"command": "autopilot"})
        for variant, slices in ctx.settings.variants.items():
            if variant_dataset(variant) not in list_datasets(root):
                self._make(ctx, budget, variant, slices, MADE if made else None, trusted)
        variants, same = searched_variants(ctx)
        for variant, twin in same:
            ctx.journal.decide("data", f"variant {variant} not searched", why=f"the same examples as {twin}")
        if not variants:
            raise UnderdogError("no data variant has examples to train on; see `underdog autopilot --log`")

    def _make(self, ctx: Context, budget: Budget, variant: str, slices: list[str], raw: str | None,
              trusted: list[Example]) -> None:
        new = curated_examples(ctx, budget, variant, slices, raw, trusted)
        examples = new + trusted
        if not examples:
            ctx.journal.decide("data", f"variant {variant}: no examples", why="nothing was made or kept")
            return
        save_dataset(ctx.project.root, variant_dataset(variant), examples,
                     parent=[*([raw] if raw else []), *ctx.cfg.datasets],
                     recipe={"command": "autopilot", "variant": variant, "slices": slices},
                     counts={"made_curated": len(new), "yours": len(trusted)})
        ctx.journal.decide("data", f"variant {variant}: {len(examples)} examples",
                           why=f"{len(new)} made and curated (slices: {', '.join(slices) or 'none'}) + "
                               f"{len(trusted)} of yours")


def curated_examples(ctx: Context, budget: Budget, variant: str, slices: list[str], raw: str | None,
                     trusted: list[Example]) -> list[Example]:
    """The curated examples a variant adds to your datasets (augmented with its slices first)."""
    root, base = ctx.project.root, raw
    if slices:
        if base is None:  # augment your own examples; only the slices' new examples are curated
            base = YOURS
            if base not in list_datasets(root) and trusted:
                save_dataset(root, base, trusted, parent=ctx.cfg.datasets, recipe={"command": "autopilot"})
        augmented = f"{base}+{variant}"
        if (base in list_datasets(root) and augmented not in list_datasets(root)
                and (project := budget.take(f"augment:{variant}"))):
            guarded(ctx, "augment", lambda: augment(project, base, slices, name=augmented,
                                                    allow_failures=ctx.options.skip_failed))
        if augmented in list_datasets(root):
            base = augmented
    if base is None or base not in list_datasets(root):
        return []
    ids = {e.id for e in trusted}
    examples = [e for e in load_dataset(root, base) if e.id not in ids]
    if not examples:
        return []
    todo = variant_made(variant)
    if todo not in list_datasets(root):
        save_dataset(root, todo, examples, parent=base, recipe={"command": "autopilot", "variant": variant})
    curated = f"{todo}-curated"
    if curated not in list_datasets(root) and (project := budget.take("curate")):
        guarded(ctx, "curate", lambda: curate(project, todo, curated))
    return load_dataset(root, curated) if curated in list_datasets(root) else []


def searched_variants(ctx: Context) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({variant: its dataset} of the variants to search, [(variant, the earlier variant it equals)])."""
    root, datasets = ctx.project.root, set(list_datasets(ctx.project.root))
    out: dict[str, str] = {}
    same: list[tuple[str, str]] = []
    for variant in ctx.settings.variants:
        name = variant_dataset(variant)
        if name not in datasets:
            continue
        sha = load_manifest(root, name).sha256
        twin = next((v for v, n in out.items() if load_manifest(root, n).sha256 == sha), None)
        if twin:
            same.append((variant, twin))
        else:
            out[variant] = name
    return out, same


def slice_kind(variant: str, spec: str, datasets: set[str]) -> str:
    """The kind of an augment slice (refusals, translation, ...); ConfigError naming the key for an unknown one."""
    try:
        return slice_label(spec, sorted(datasets))[0]
    except UnderdogError as exc:
        raise ConfigError(f"autopilot.variants.{variant}: {exc}") from None


def slice_calls(project: Project, kind: str, pool: int) -> int:
    """Teacher calls an augmentation slice makes, roughly (two per example made; none to mix a dataset in)."""
    aug = project.config.data.augment
    shares: dict[str, Any] = {"locality": aug.locality_share, "summary": aug.summary_share}
    if kind == "dataset":
        return 0
    if kind == "refusals":
        return 2 * aug.refusals
    return 2 * math.ceil(shares.get(kind, aug.translation_share) * max(pool, 1))
