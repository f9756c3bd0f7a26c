"""``dyntransnet_export_onnx``: a trained nnU-Net fold as an ONNX model and its sidecar.

    dyntransnet_export_onnx -d 501 -c 3d_fullres -f 0 -tr nnUNetTrainerDynTransNet -o lits_fold0.onnx

Finds the fold as ``nnUNetv2_predict`` does (``$nnUNet_results``, ``-tr``, ``-p``, ``-c``,
``-f``, ``-chk``), builds the network the way nnU-Net's predictor does (deep supervision off),
loads the checkpoint's weights and exports them with torch's dynamo exporter (opset 18; the
TorchScript exporter cannot export ``scaled_dot_product_attention`` with the folded D-MSA
bias), with the batch axis dynamic and the plan's patch as the spatial size. Then it runs the
ONNX model with onnxruntime and the PyTorch network on the same random batch of two patches
and refuses the export if the logits differ. The model and its sidecar (``MODEL.json``, see
``sidecar.py``) appear together at the end, or not at all.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from nnunet_dyntransnet.inference.sidecar import FORMAT, file_sha256, sidecar_path
from nnunet_dyntransnet.utilities.checkpoint_file import read_checkpoint
from nnunet_dyntransnet.utilities.command import run_command
from nnunet_dyntransnet.utilities.staging import remove_stale_staging, sigterm_raises, staging_name

__all__ = ["ExportError", "export_fold", "main"]

COMMAND = "dyntransnet_export_onnx"
OPSET = 18
RTOL = 1e-3  # of the largest logit: onnxruntime's kernels sum in another order than PyTorch's


class ExportError(RuntimeError):
    """The fold cannot be exported; the message names the file or value and what to do."""


def _versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    import nnunet_dyntransnet

    out = {"nnunet_dyntransnet": nnunet_dyntransnet.__version__, "torch": torch.__version__}
    for package in ("nnunetv2", "onnx", "onnxruntime"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _model_folder(dataset: str, trainer: str, plans: str, configuration: str, fold: str, checkpoint: str) -> Path:
    """The trained fold's folder as nnUNetv2_predict finds it, with a message for each missing piece."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    if configuration.endswith("cascade_fullres"):
        raise ExportError(f"-c {configuration}: a cascade stage takes the previous stage's segmentation as input, "
                          f"which the ONNX predictor does not make; export 3d_fullres, 3d_lowres or 2d")
    if not os.environ.get("nnUNet_results"):
        raise ExportError("nnUNet_results is not set; set it as for nnUNetv2_predict")
    try:
        folder = Path(get_output_folder(dataset, trainer, plans, configuration))
    except (RuntimeError, ValueError) as e:
        raise ExportError(f"-d {dataset}: {e}") from None
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such trained model (check -d, -tr, -p and -c; train it with "
                          f"nnUNetv2_train {dataset} {configuration} {fold} -tr {trainer} -p {plans})")
    chk = folder / f"fold_{fold}" / checkpoint
    if not chk.is_file():
        there = sorted(p.name for p in (folder / f"fold_{fold}").glob("*.pth")) if (folder / f"fold_{fold}").is_dir() else []
        raise ExportError(f"{chk}: no such checkpoint (fold {fold} has {there or 'no checkpoints'}); finish the "
                          f"training, or name another one with -chk (e.g. checkpoint_best.pth)")
    # nnU-Net's predictor would fail on a cut-off file with a traceback that does not name it
    read_checkpoint(chk, ExportError, "Export another checkpoint of the fold with -chk (e.g. checkpoint_best.pth), "
                                      "or train the fold again")
    return folder


def _load(folder: Path, fold: str, checkpoint: str):
    """nnU-Net's predictor, initialised from the fold as nnUNetv2_predict does, and its network with the weights."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_dyntransnet.trainer_search_path import register

    register()  # nnU-Net finds the plugin's trainers by name (what the installed start-up file does)
    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), (fold if fold == "all" else int(fold),), checkpoint)
    network = predictor.network
    network.load_state_dict(predictor.list_of_parameters[0])
    return predictor, network.eval()


def _export(network, channels: int, patch: Sequence[int], path: Path) -> None:
    import torch

    # a batch of two: the exporter specialises an axis of size 1 to a constant, so the batch axis
    # would come out fixed (it did for every 2d model)
    example = torch.randn(2, channels, *patch)
    batch = torch.export.Dim("batch", min=1, max=1024)
    try:
        with torch.no_grad():
            torch.onnx.export(network, (example,), str(path), input_names=["image"], output_names=["logits"],
                              opset_version=OPSET, dynamo=True, dynamic_shapes=({0: batch},), external_data=False,
                              verbose=False)
    except ImportError as e:
        raise ExportError(f"torch's ONNX exporter needs onnx and onnxscript ({e}); "
                          f"pip install \"nnunet-dyntransnet[onnx]\"") from None


def _check(network, path: Path, channels: int, patch: Sequence[int]) -> Dict[str, Any]:
    """Logits of onnxruntime and PyTorch on one random batch of two patches (two: the batch axis is dynamic)."""
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    x = torch.randn(2, channels, *patch)
    with torch.no_grad():
        ref = network(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch_axis = session.get_inputs()[0].shape[0]
    if isinstance(batch_axis, int):
        raise ExportError(f"the exported graph has a fixed batch size ({batch_axis}); it must be dynamic")
    out = session.run(None, {"image": x.numpy()})[0]
    if out.shape != ref.shape:
        raise ExportError(f"onnxruntime returned logits of shape {list(out.shape)}, PyTorch {list(ref.shape)}")
    diff = float(np.abs(out - ref).max())
    tolerance = RTOL * max(1.0, float(np.abs(ref).max()))
    if not np.isfinite(out).all() or diff > tolerance:
        raise ExportError(f"onnxruntime's logits differ from PyTorch's by up to {diff:.3g} (tolerance {tolerance:.3g}) "
                          f"on a random batch: the export is wrong; nothing was written")
    return {"max_abs_logit_difference": diff, "tolerance": tolerance, "batch": 2}


def _is_sidecar(path: Path, model: Optional[Path] = None) -> bool:
    """Whether ``path`` is a sidecar this command wrote (its format), and, given ``model``, the one of that file."""
    try:
        sidecar = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        return False
    return model is None or sidecar.get("onnx_sha256") == file_sha256(model)


def export_fold(dataset: str, configuration: str, fold: str, trainer: str, plans: str, checkpoint: str,
                out: Path, overwrite: bool = False) -> Dict[str, Any]:
    """Export one trained fold to ``out`` (``.onnx``) and its sidecar; returns the sidecar."""
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels

    from nnunet_dyntransnet.utilities.ownership import Claim

    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"-o {out}: name the model file NAME.onnx (the sidecar becomes NAME.json)")
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder; create it or choose another -o")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ExportError(f"{out.parent}: not writable, so {out.name} cannot be written there; choose another -o")
    folder = _model_folder(dataset, trainer, plans, configuration, fold, checkpoint)
    # ownership.py: never into the model's folder; NAME.json and NAME.onnx replaced only if this command wrote them
    claim = Claim(COMMAND, [(folder, "the trained model's folder, which it reads")], "-o", ExportError)
    side = sidecar_path(out)
    claim.file(side, overwrite, owned=_is_sidecar)
    claim.file(out, overwrite, owned=lambda model: _is_sidecar(sidecar_path(model), model))
    out, side = out.resolve(), side.resolve()
    predictor, network = _load(folder, fold, checkpoint)
    cm, pm = predictor.configuration_manager, predictor.plans_manager
    channels = determine_num_input_channels(pm, cm, predictor.dataset_json)
    patch = [int(p) for p in cm.patch_size]  # as built: a baseline may have rounded the plan's patch up

    # hidden, named after this process: a run killed by SIGKILL leaves them, and the next one removes them
    for target in (out, side):
        remove_stale_staging(target, "exporting")
    tmp_model = out.parent / staging_name(out, "exporting")
    tmp_side = out.parent / staging_name(side, "exporting")
    try:
        with sigterm_raises():  # SIGTERM cleans up like Ctrl-C (the finally below)
            return _export_and_write(network, predictor, folder, configuration, fold, checkpoint, channels, patch,
                                     tmp_model, tmp_side, out, side)
    finally:
        for leftover in (tmp_model, tmp_side):
            leftover.unlink(missing_ok=True)


def _export_and_write(network, predictor, folder: Path, configuration: str, fold: str, checkpoint: str, channels: int,
                      patch: Sequence[int], tmp_model: Path, tmp_side: Path, out: Path, side: Path) -> Dict[str, Any]:
    """Export and verify into the hidden ``tmp_*`` files, then move both into place; returns the sidecar."""
    cm, pm = predictor.configuration_manager, predictor.plans_manager
    _export(network, channels, patch, tmp_model)
    verification = _check(network, tmp_model, channels, patch)
    plans_dict = json.loads(json.dumps(pm.plans))
    plans_dict["configurations"][configuration]["patch_size"] = patch
    labels = predictor.dataset_json["labels"]
    sidecar = {
        "format": FORMAT,
        "dataset": pm.dataset_name, "trainer": predictor.trainer_name, "plans_name": pm.plans_name,
        "configuration": configuration, "fold": fold, "checkpoint": str(folder / f"fold_{fold}" / checkpoint),
        "patch_size": patch, "spacing": list(cm.spacing),
        "transpose_forward": list(pm.transpose_forward), "transpose_backward": list(pm.transpose_backward),
        "normalization_schemes": list(cm.normalization_schemes),
        "foreground_intensity_properties_per_channel": pm.foreground_intensity_properties_per_channel,
        "labels": labels, "regions_class_order": predictor.dataset_json.get("regions_class_order"),
        "mirroring_axes": list(predictor.allowed_mirroring_axes) if predictor.allowed_mirroring_axes else [],
        "num_input_channels": channels,
        "num_segmentation_heads": pm.get_label_manager(predictor.dataset_json).num_segmentation_heads,
        "onnx": {"opset": OPSET, "exporter": "torch.onnx.export(dynamo=True)", "input": "image", "output": "logits",
                 "dynamic_axes": {"image": [0], "logits": [0]}, "verification": verification},
        "versions": _versions(),
        "plans": plans_dict, "dataset_json": predictor.dataset_json,
        "onnx_sha256": file_sha256(tmp_model),
    }
    tmp_side.write_text(json.dumps(sidecar, indent=2))
    os.replace(tmp_model, out)
    os.replace(tmp_side, side)
    return sidecar


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_export_onnx", description=__doc__.split("\n\n")[0],
                                epilog="The sidecar's fields are listed in docs/deployment.md.")
    p.add_argument("-d", required=True, help="dataset name or id, as for nnUNetv2_predict")
    p.add_argument("-c", default="3d_fullres", help="configuration (default 3d_fullres)")
    p.add_argument("-f", default="0", help="one fold: 0-4 or all (default 0)")
    p.add_argument("-tr", default="nnUNetTrainerDynTransNet", help="trainer (default nnUNetTrainerDynTransNet)")
    p.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    p.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint file in the fold folder")
    p.add_argument("-o", required=True, type=Path, help="the model file to write, NAME.onnx (sidecar NAME.json)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a NAME.onnx and NAME.json that this command wrote (never other files)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.f != "all" and not args.f.isdigit():
        _parser().error(f"-f {args.f}: one fold, a number or 'all'")

    def export() -> str:  # interrupted, the hidden files are removed: nothing was written
        sidecar = export_fold(args.d, args.c, args.f, args.tr, args.p, args.chk, args.o, args.overwrite)
        check = sidecar["onnx"]["verification"]
        return (f"wrote {args.o} and {sidecar_path(args.o)}: {sidecar['trainer']} {sidecar['configuration']} fold "
                f"{sidecar['fold']}, patch {sidecar['patch_size']}, batch axis dynamic; onnxruntime agrees with "
                f"PyTorch to {check['max_abs_logit_difference']:.2g} (tolerance {check['tolerance']:.2g})")

    return run_command(COMMAND, export, (ExportError,))


if __name__ == "__main__":
    sys.exit(main())
