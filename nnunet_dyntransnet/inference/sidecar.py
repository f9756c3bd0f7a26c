"""The sidecar of an exported ONNX model: everything nnU-Net's inference needs besides the network.

``MODEL.onnx`` holds the network (deep supervision off, dynamic batch, the plan's patch);
``MODEL.json`` beside it holds the rest, so that ``dyntransnet_predict_onnx`` reproduces
``nnUNetv2_predict`` with nothing else:

- ``plans``: the whole plans file (target spacing, transpose, resampling functions, the
  normalisation scheme and its intensity properties per channel), with the configuration's
  patch as the network was exported (a baseline may have rounded it up);
- ``dataset_json``: channels, labels or regions, file ending;
- ``configuration``, ``patch_size``, ``mirroring_axes`` (the trainer's test-time mirroring),
  ``num_input_channels``, ``num_segmentation_heads``;
- provenance: dataset, trainer, fold, checkpoint, plugin / nnU-Net / torch / ONNX versions;
- ``onnx_sha256``: the model file's hash, so a sidecar is never used with another model.

The human-readable fields (spacing, normalisation, labels) repeat what ``plans`` and
``dataset_json`` say, for whoever reads the file; the predictor reads ``plans`` and
``dataset_json``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict

__all__ = ["FORMAT", "SidecarError", "sidecar_path", "file_sha256", "read_sidecar"]

FORMAT = "nnunet-dyntransnet-onnx/1"
REQUIRED = ("format", "plans", "dataset_json", "configuration", "patch_size", "mirroring_axes", "num_input_channels",
            "num_segmentation_heads", "onnx_sha256")


class SidecarError(ValueError):
    """A sidecar is missing, unreadable or does not belong to the model; the message says which and what to do."""


def sidecar_path(model: Path) -> Path:
    """``MODEL.onnx`` -> ``MODEL.json``."""
    return model.with_suffix(".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar(model: Path) -> Dict[str, Any]:
    """The sidecar of ``model``, checked: present, complete, this format, and made for this very file."""
    path = sidecar_path(model)
    if not model.is_file():
        raise SidecarError(f"{model}: no such model file; give the .onnx file dyntransnet_export_onnx wrote (-m)")
    if not path.is_file():
        raise SidecarError(f"{path}: missing. dyntransnet_export_onnx writes it beside {model.name}; keep the two "
                           f"files together, or export the model again")
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SidecarError(f"{path}: not readable as JSON ({e}); export the model again") from None
    missing = [k for k in REQUIRED if k not in sidecar]
    if missing or sidecar.get("format") != FORMAT:
        raise SidecarError(f"{path}: not a sidecar of this plugin's format {FORMAT} (format "
                           f"{sidecar.get('format')!r}, missing {missing}); export the model again")
    if file_sha256(model) != sidecar["onnx_sha256"]:
        raise SidecarError(f"{path} was written for another model than {model} (SHA-256 differs); use the sidecar "
                           f"exported with this model, or export again")
    return sidecar
