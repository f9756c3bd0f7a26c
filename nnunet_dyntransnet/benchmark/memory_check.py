"""Does the planning estimate track measured memory? ``compute_conv_feature_map_size`` against peak memory.

For each patch size, each network's training step runs in a child process (peak CUDA memory,
or peak RSS above the pre-build baseline on CPU); the estimate times the batch size should
grow with it. Reports the Pearson correlation per network and the memory per estimated
element, which nnU-Net's planners assume is the same for every network they size.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from nnunet_dyntransnet.benchmark.measure import run_in_child

__all__ = ["memory_model_check"]


def memory_model_check(patches: Sequence[Sequence[int]], networks: Sequence[str], device: str, batch: int,
                       spacing=None) -> Dict:
    points: List[Dict] = []
    for patch in patches:
        for name in networks:
            r = run_in_child({"patch": list(patch), "spacing": spacing, "network": name, "measure": "train",
                              "batch": batch, "device": device, "repeats": 1, "warmup": 0, "in_channels": 1,
                              "classes": 3})
            points.append({"patch": list(patch), "network": name, "estimate": r["feature_map_size"] * batch,
                           "peak_memory_gib": r["peak_memory_gib"]})
    summary = {}
    for name in networks:
        pts = [p for p in points if p["network"] == name]
        est = np.array([p["estimate"] for p in pts], float)
        mem = np.array([p["peak_memory_gib"] for p in pts], float)
        summary[name] = {"pearson_r": float(np.corrcoef(est, mem)[0, 1]) if len(pts) > 2 else None,
                         "gib_per_1e9_estimated": float(np.polyfit(est / 1e9, mem, 1)[0]) if len(pts) > 1 else None}
    est = np.array([p["estimate"] for p in points], float)
    mem = np.array([p["peak_memory_gib"] for p in points], float)
    pooled = float(np.corrcoef(est, mem)[0, 1]) if len(points) > 2 else None
    return {"device": device, "batch": batch, "points": points, "per_network": summary, "pooled_pearson_r": pooled}
