"""Child process of the benchmark: build one network from the plan, take one measurement, print JSON.

Called as ``python -m nnunet_dyntransnet.benchmark.child TASK_JSON`` by
:func:`nnunet_dyntransnet.benchmark.measure.run_in_child`.
"""
from __future__ import annotations

import json
import statistics
import sys

import torch

from nnunet_dyntransnet.benchmark import measure
from nnunet_dyntransnet.benchmark.networks import build_networks, default_plan, estimate_feature_map_size, plan_from_file


def run(task: dict) -> dict:
    """``task``: plan (``plan_file`` + ``configuration``, or ``patch`` + ``spacing``), ``network``,
    ``measure`` (``train``, ``train_memory``: the peak of two training steps alone, ``train_paired``: training
    steps taking turns with ``reference``'s, ``infer``, or ``infer_mirrored``), ``batch``, ``device``,
    ``repeats``, ``warmup``, ``compile``, ``case_shape``, ``in_channels``, ``classes``."""
    plan = plan_from_file(task["plan_file"], task["configuration"]) if task.get("plan_file") \
        else default_plan(task["patch"], task.get("spacing"))
    device = torch.device(task["device"])
    if task["measure"] == "train_paired":
        return _paired(task, plan, device)
    training = task["measure"] in ("train", "train_memory")
    builder = build_networks(plan, task["in_channels"], task["classes"], deep_supervision=training,
                             names=[task["network"]])[task["network"]]
    rss_before = measure.rss_gib(peak=False)
    torch.manual_seed(0)
    model = builder()
    patch = list(plan.patch_size)  # after building: a baseline may have rounded it up to what it needs
    out = {"network": task["network"], "measure": task["measure"], "rss_before_gib": rss_before, "patch": patch}
    if task["measure"] == "train":
        out["parameters"] = sum(p.numel() for p in model.parameters())
        out["feature_map_size"] = estimate_feature_map_size(model, patch)
        out["forward_gflops_per_sample"] = measure.forward_flops(model.to(device), task["in_channels"], patch) / 1e9
    if task.get("compile"):
        model = torch.compile(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if training:
        # the memory child: the second step is the first to hold the optimizer's state throughout
        repeats, warmup = (task["repeats"], task["warmup"]) if task["measure"] == "train" else (1, 1)
        out.update(measure.time_train_step(model, task["batch"], task["in_channels"], task["classes"], patch, device,
                                           repeats, warmup, task.get("dtype", "fp16")))
    else:
        with torch.no_grad():
            out.update(measure.time_inference(model, plan, task["in_channels"], task["classes"], task["case_shape"],
                                              device, mirroring=task["measure"] == "infer_mirrored"))
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    else:
        out["peak_rss_gib"] = measure.rss_gib(peak=True)
        out["peak_memory_gib"] = out["peak_rss_gib"] - rss_before
    return out


def _paired(task: dict, plan, device: torch.device) -> dict:
    """The network's and the reference's training steps, interleaved (:func:`measure.time_train_steps_interleaved`):
    each timed step of the network divided by the reference's step just before it."""
    names = [task["reference"], task["network"]]
    builders = build_networks(plan, task["in_channels"], task["classes"], deep_supervision=True, names=names)
    models = {}
    for name in names:
        torch.manual_seed(0)
        models[name] = builders[name]()
        if task.get("compile"):
            models[name] = torch.compile(models[name])
    times = measure.time_train_steps_interleaved(models, task["batch"], task["in_channels"], task["classes"],
                                                 list(plan.patch_size), device, task["repeats"], task["warmup"],
                                                 task.get("dtype", "fp16"))
    reference, network = times[task["reference"]], times[task["network"]]
    return {"network": task["network"], "measure": "train_paired", "reference": task["reference"],
            "pair_ratios": [n / r for n, r in zip(network, reference)], "train_step_s": statistics.median(network),
            "reference_train_step_s": statistics.median(reference)}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
