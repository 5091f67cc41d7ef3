"""GPUs by default, packed: how much of a GPU each fold worker reserves (`--gpus-per-worker auto`).

On a cluster with GPUs, folds train on them, several to a GPU: as many as the GPU's free memory holds
(asked of a process on a GPU node: the driver cannot see it in `cluster_resources()`), at most
DEFAULT_FOLDS_PER_GPU. On a cluster without GPUs, folds train on CPU. A number overrides all this.
"""

from __future__ import annotations

import logging

import ray

log = logging.getLogger("loso")

DEFAULT_FOLDS_PER_GPU = 4
"""Folds sharing one GPU at most. Measured on an H100 (the GPU issue): 4 quick folds sharing the GPU ran
5 folds in 95 s against more than 200 s one at a time; 1/2/8 per GPU are still to be measured."""
MODEL_ALLOWANCE_BYTES = 2 * 1024 ** 3
"""GPU memory a fold needs besides its windows: weights, optimizer state and activations of the full
model at batch 128, with room for the CUDA context (an estimate, not a measurement)."""
MEMORY_SHARE = 0.9


def folds_per_gpu(free_bytes: int, fold_bytes: int) -> int:
    """How many folds of `fold_bytes` windows each fit in `free_bytes` of GPU memory (1 .. DEFAULT_FOLDS_PER_GPU)."""
    return max(1, min(DEFAULT_FOLDS_PER_GPU, int(MEMORY_SHARE * free_bytes // (fold_bytes + MODEL_ALLOWANCE_BYTES))))


@ray.remote(num_gpus=1, num_cpus=0)
def _gpu_memory() -> tuple[int, int, str]:
    """(free, total) bytes and the name of the GPU this task got."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return free, total, torch.cuda.get_device_name()


def gpus_per_worker(requested: str, cluster: dict[str, float], workers: int, fold_bytes: int) -> float:
    """The GPU share each fold worker reserves: `requested` as a number, or the 'auto' rule above."""
    if requested != "auto":
        return float(requested)
    if cluster.get("GPU", 0.0) < 1:
        return 0.0
    if workers > 1:  # NCCL needs a GPU of its own per rank: DDP folds take whole GPUs
        return 1.0
    free, total, name = ray.get(_gpu_memory.remote())
    folds = folds_per_gpu(free, fold_bytes)
    log.info("GPUs found (%s, %.1f of %.1f GiB free): %d fold(s) per GPU (%.2f GiB of windows per fold); "
             "--gpus-per-worker sets another share", name, free / 2 ** 30, total / 2 ** 30, folds, fold_bytes / 2 ** 30)
    return 1.0 / folds
