"""Multi-GPU training of one run with `accelerate launch` (DDP, or FSDP with `--fsdp`).

    underdog train --dataset v1 --processes 4 epoch=3            # DDP on 4 GPUs
    underdog train --dataset v1 --processes 8 --fsdp lora_r=64   # FSDP (shards the frozen base weights)

`underdog train --processes N` builds the `accelerate launch` command below and runs it; every process runs
`python -m underdog.train.launch` (this module), which calls the same `train()` recipe: the transformers Trainer
inside picks up the process group accelerate created. Only rank 0 writes the manifest, store rows and adapter.
`cpu=True` (used by the tests) runs the same launcher with `device=cpu`: DDP over the gloo backend.
The local executor's parallel sweep slots run this module too, as plain processes (`launch_command`).

FSDP loads the model once, not once per process: `--fsdp_cpu_ram_efficient_loading` makes transformers read the
weights on rank 0 only (the others build it on the meta device and receive the shards, `--fsdp_sync_module_states`),
which works only when the process group exists before the model is loaded, so `main` creates it first.
Mixed precision follows `train.precision` (bf16 from sm80, fp16 below).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from underdog.errors import UnderdogError
from underdog.project import Project
from underdog.train.lora import train


def accelerate_command(project_root: Path, dataset: str, run_id: str, overrides: list[str], *, processes: int,
                       fsdp: bool = False, cpu: bool = False, port: int | None = None,
                       mixed_precision: str = "bf16", sweep: str | None = None) -> list[str]:
    """The `accelerate launch` argv for one run on `processes` devices (`mixed_precision`: bf16, fp16 or no)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
           "--num_machines", "1", "--dynamo_backend", "no", "--mixed_precision", "no" if cpu else mixed_precision]
    if fsdp and not cpu:
        cmd += ["--use_fsdp", "--fsdp_sharding_strategy", "FULL_SHARD", "--fsdp_auto_wrap_policy",
                "TRANSFORMER_BASED_WRAP", "--fsdp_cpu_ram_efficient_loading", "true",
                "--fsdp_sync_module_states", "true"]
    elif processes > 1:
        cmd.append("--multi_gpu")  # the torch.distributed launcher; with device=cpu the Trainer picks gloo
    if port:
        cmd += ["--main_process_port", str(port)]
    if cpu:
        overrides = [*overrides, "device=cpu"]
    return cmd + launch_command(project_root, dataset, run_id, overrides, sweep=sweep)[1:]


def launch_command(project_root: Path, dataset: str, run_id: str, overrides: list[str], *,
                   sweep: str | None = None) -> list[str]:
    """The argv of one training process running this module (no launcher: one process, one device)."""
    return [sys.executable, "-m", "underdog.train.launch", str(project_root), dataset, run_id, json.dumps(overrides),
            *(["--sweep", sweep] if sweep else [])]


def launch(project_root: Path, dataset: str, run_id: str, overrides: list[str], *, processes: int,
           fsdp: bool = False, cpu: bool = False, port: int | None = None, mixed_precision: str = "bf16") -> None:
    """Run one training run across `processes` processes; UnderdogError when it does not finish."""
    cmd = accelerate_command(project_root, dataset, run_id, overrides, processes=processes, fsdp=fsdp, cpu=cpu,
                             port=port, mixed_precision=mixed_precision)
    if subprocess.run(cmd, check=False).returncode != 0:
        raise UnderdogError(f"accelerate launch of run {run_id} failed (see the output above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("dataset")
    parser.add_argument("run_id")
    parser.add_argument("overrides")
    parser.add_argument("--sweep", default=None)
    args = parser.parse_args()
    if "WORLD_SIZE" in os.environ:  # under `accelerate launch`
        from accelerate import PartialState

        PartialState()  # the process group, before the model is loaded (FSDP's rank-0-only loading needs it)
    try:
        train(Project(args.root), args.dataset or None, json.loads(args.overrides), run_id=args.run_id,
              sweep=args.sweep)
    except UnderdogError as exc:  # recorded in the run's manifest; the exit code tells the parent
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
