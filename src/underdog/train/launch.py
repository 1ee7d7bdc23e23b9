"""Multi-GPU training of one run with `accelerate launch` (DDP, or FSDP with `--fsdp`).

    underdog train --dataset v1 --processes 4 epoch=3            # DDP on 4 GPUs
    underdog train --dataset v1 --processes 8 --fsdp lora_r=64   # FSDP (shards the frozen base weights)

`underdog train --processes N` builds the `accelerate launch` command below and runs it; every process runs
`python -m underdog.train.launch` (this module), which calls the same `train()` recipe: the transformers Trainer
inside picks up the process group accelerate created. Only rank 0 writes the manifest, store rows and adapter.
`cpu=True` (used by the tests) runs the same launcher with `device=cpu`: DDP over the gloo backend.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from underdog.errors import UnderdogError


def accelerate_command(project_root: Path, dataset: str, run_id: str, overrides: list[str], *, processes: int,
                       fsdp: bool = False, cpu: bool = False, port: int | None = None) -> list[str]:
    """The `accelerate launch` argv for one run on `processes` devices."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
           "--num_machines", "1", "--dynamo_backend", "no", "--mixed_precision", "no" if cpu else "bf16"]
    if fsdp and not cpu:
        cmd += ["--use_fsdp", "--fsdp_sharding_strategy", "FULL_SHARD", "--fsdp_auto_wrap_policy",
                "TRANSFORMER_BASED_WRAP"]
    elif processes > 1:
        cmd.append("--multi_gpu")  # the torch.distributed launcher; with device=cpu the Trainer picks gloo
    if port:
        cmd += ["--main_process_port", str(port)]
    if cpu:
        overrides = [*overrides, "device=cpu"]
    return cmd + ["-m", "underdog.train.launch", str(project_root), dataset, run_id, json.dumps(overrides)]


def launch(project_root: Path, dataset: str, run_id: str, overrides: list[str], *, processes: int,
           fsdp: bool = False, cpu: bool = False, port: int | None = None) -> None:
    """Run one training run across `processes` processes; UnderdogError when it does not finish."""
    cmd = accelerate_command(project_root, dataset, run_id, overrides, processes=processes, fsdp=fsdp, cpu=cpu,
                             port=port)
    if subprocess.run(cmd, check=False).returncode != 0:
        raise UnderdogError(f"accelerate launch of run {run_id} failed (see the output above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root")
    parser.add_argument("dataset")
    parser.add_argument("run_id")
    parser.add_argument("overrides")
    args = parser.parse_args()
    from underdog.project import Project
    from underdog.train.lora import train

    train(Project(args.root), args.dataset, json.loads(args.overrides), run_id=args.run_id)


if __name__ == "__main__":
    main()
