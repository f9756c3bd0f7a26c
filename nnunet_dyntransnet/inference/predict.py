"""``dyntransnet_predict_onnx``: nnUNetv2_predict with an exported ONNX model instead of a checkpoint.

    dyntransnet_predict_onnx -i IN -o OUT -m lits_fold0.onnx [--disable_tta] [-device cpu|cuda]

Needs the ``.onnx`` file and its sidecar, nothing else: no ``nnUNet_results``, no checkpoint,
no trainer class. Inference is nnU-Net's own, configured from the sidecar's plans and
dataset.json: nnU-Net's preprocessing (transpose, resampling to the target spacing,
normalisation with the stored intensity properties), its sliding window with Gaussian
weighting, test-time mirroring over the trainer's axes, and resampling back to each input's
geometry. Only the network is swapped: :class:`OnnxNetwork` runs onnxruntime where nnU-Net's
predictor calls the PyTorch module.

The input folder is checked first (every case has the model's number of channels, as
``CASE_0000.nii.gz``, ``CASE_0001...``; every image is 3D); the predictions are written in a
hidden folder beside ``-o`` and appear there complete, or not at all.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from nnunet_dyntransnet.inference.sidecar import SidecarError, read_sidecar, sidecar_path
from nnunet_dyntransnet.utilities.command import run_command
from nnunet_dyntransnet.utilities.staging import StagingError

__all__ = ["OnnxNetwork", "InputError", "PREDICTIONS_MARKER", "prepare", "predict_folder", "main"]

SUPERVISED_ENV = "DYNTRANSNET_PREDICT_SUPERVISED"  # set in the child that predicts (see _supervise)


class InputError(ValueError):
    """The input folder does not hold what the model takes; the message names the case and file."""


class OnnxNetwork(torch.nn.Module):
    """A stand-in for the network inside nnU-Net's predictor: ``forward`` runs the ONNX model.

    Shapes: ``(B, channels, *patch)`` float -> ``(B, heads, *patch)`` logits, on the input's device.
    It has no parameters, so the predictor's ``load_state_dict({})`` per fold is a no-op.
    """

    def __init__(self, session) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.session.run(None, {"image": x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(logits).to(x.device)


def _session(model: Path, device: str):
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError("-device cuda: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu), "
                             "or predict with -device cpu")
        providers = ["CUDAExecutionProvider", *providers]
    return ort.InferenceSession(str(model), providers=providers)


COMMAND = "dyntransnet_predict_onnx"
PREDICTIONS_MARKER = f".{COMMAND}"  # written into every output folder: what --overwrite may replace (ownership.py)


def _cases(folder: Path, file_ending: str, channels: int) -> Dict[str, List[Path]]:
    """``CASE -> [CASE_0000.ext, ...]``, checked: every case has exactly channels 0..channels-1, every file is a
    complete single-channel 3D image with finite voxels (:mod:`nnunet_dyntransnet.utilities.volume_io`), and no other
    image type lies beside them."""
    from nnunet_dyntransnet.utilities.volume_io import check_voxels, image_files, read_image

    if not folder.is_dir():
        raise InputError(f"-i {folder}: no such folder")
    cases: Dict[str, Dict[int, Path]] = {}
    for path in image_files(folder, file_ending, InputError):
        stem = path.name[: -len(file_ending)]
        case, _, channel = stem.rpartition("_")
        if not case or len(channel) != 4 or not channel.isdigit():
            raise InputError(f"{path}: not named CASE_XXXX{file_ending} (XXXX the 4-digit channel, as for "
                             f"nnUNetv2_predict); rename it")
        cases.setdefault(case, {})[int(channel)] = path
    if not cases:
        raise InputError(f"-i {folder}: no images ending in {file_ending} (the model's dataset.json file ending)")
    for case, files in cases.items():
        if sorted(files) != list(range(channels)):
            raise InputError(f"case {case} in {folder} has channels {sorted(files)}; the model takes {channels} "
                             f"(CASE_0000{file_ending} to CASE_{channels - 1:04d}{file_ending}): add or remove files")
        for path in files.values():
            check_voxels(path, read_image(path, InputError), InputError)
    return {case: [files[c] for c in range(channels)] for case, files in cases.items()}


def prepare(model: Path, images: Path, out: Path, overwrite: bool = False):
    """Everything checked before any work: -o under :class:`~nnunet_dyntransnet.utilities.ownership.Claim`, the
    model's sidecar, and the input cases. Returns (what -o replaces, the sidecar, ``{case: its image files}``)."""
    from nnunet_dyntransnet.utilities.ownership import Claim

    model = Path(model)
    claim = Claim(COMMAND, [(images, "the input folder, -i"), (model, "the model, -m"),
                            (sidecar_path(model), "the model's sidecar")], "-o", InputError)
    replace = claim.folder(Path(out).resolve(), overwrite)
    sidecar = read_sidecar(model)
    cases = _cases(images, sidecar["dataset_json"]["file_ending"], sidecar["num_input_channels"])
    return replace, sidecar, cases


def predict_folder(model: Path, images: Path, out: Path, disable_tta: bool = False, device: str = "cpu",
                   step_size: float = 0.5, npp: int = 3, nps: int = 3, overwrite: bool = False) -> List[str]:
    """Predict every case of ``images`` into ``out`` with the ONNX model; returns the case names.

    ``out`` follows :class:`nnunet_dyntransnet.utilities.ownership.Claim`: never the input folder, nor a folder
    holding or lying in it, nor one holding the model or its sidecar, nor nnU-Net's folders, the current or home folder or one holding
    them; an existing one is replaced only with ``overwrite`` and only if this command wrote every file in it.
    nnU-Net's predictor starts worker processes here: :func:`main` runs this in a supervised child.
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_dyntransnet.utilities.ownership import write_marker
    from nnunet_dyntransnet.utilities.staging import staged_folder

    out = Path(out).resolve()
    replace, sidecar, cases = prepare(model, images, out, overwrite)
    plans_manager = PlansManager(sidecar["plans"])
    configuration = plans_manager.get_configuration(sidecar["configuration"])
    mirroring = tuple(sidecar["mirroring_axes"]) or None
    predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=not disable_tta,
                                perform_everything_on_device=device == "cuda", device=torch.device(device),
                                allow_tqdm=False)
    predictor.manual_initialization(OnnxNetwork(_session(Path(model), device)), plans_manager, configuration, [{}],
                                    sidecar["dataset_json"], sidecar["trainer"], mirroring)
    with staged_folder(out, replace=replace, tag="predicting") as staging:
        predictor.predict_from_files([[str(p) for p in files] for files in cases.values()],
                                     [str(staging / case) for case in cases], save_probabilities=False,
                                     overwrite=True, num_processes_preprocessing=npp,
                                     num_processes_segmentation_export=nps)
        # nnU-Net records its arguments beside the predictions: name the folder they end up in
        args = staging / "predict_from_raw_data_args.json"
        if args.is_file():
            args.write_text(args.read_text().replace(str(staging), str(out)))
        write_marker(staging, COMMAND)
    return list(cases)


def _available_providers() -> List[str]:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except ImportError:
        return []


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dyntransnet_predict_onnx", description=__doc__.split("\n\n")[0])
    p.add_argument("-i", required=True, type=Path, help="input folder: CASE_0000.nii.gz, ... as for nnUNetv2_predict")
    p.add_argument("-o", required=True, type=Path,
                   help="output folder: new or empty, or one this command wrote (replaced with --overwrite)")
    p.add_argument("-m", required=True, type=Path, help="the .onnx model; its sidecar .json must lie beside it")
    p.add_argument("--disable_tta", action="store_true", help="no test-time mirroring (faster, as nnUNetv2_predict)")
    p.add_argument("-device", default="cpu", choices=["cpu", "cuda"], help="where onnxruntime runs (default cpu)")
    p.add_argument("-step_size", type=float, default=0.5, help="sliding-window step, fraction of the patch (0.5)")
    p.add_argument("-npp", type=int, default=3, help="preprocessing processes (default 3)")
    p.add_argument("-nps", type=int, default=3, help="export processes (default 3)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace -o if this command wrote it (never a folder holding anything else)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.step_size <= 1:
        _parser().error(f"-step_size {args.step_size}: a fraction of the patch in (0, 1]")
    for option, value in (("-npp", args.npp), ("-nps", args.nps)):
        if value < 1:
            _parser().error(f"{option} {value}: at least 1 process")
    if args.device == "cuda" and "CUDAExecutionProvider" not in _available_providers():
        _parser().error("-device cuda: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu); "
                        "use -device cpu")

    errors = (SidecarError, InputError, StagingError)
    if os.environ.get(SUPERVISED_ENV) == "1":  # the supervised child: predict
        def predict() -> str:
            cases = predict_folder(args.m, args.i, args.o, args.disable_tta, args.device, args.step_size, args.npp,
                                   args.nps, args.overwrite)
            return f"predicted {len(cases)} case(s) into {args.o}"

        return run_command(COMMAND, predict, errors, "no prediction was written")

    def check() -> str:
        cases = prepare(args.m, args.i, args.o, args.overwrite)[2]
        return f"{COMMAND}: {len(cases)} case(s) of {args.i} to predict"

    checked = run_command(COMMAND, check, errors, "no prediction was written")
    return checked if checked != 0 else _supervise(sys.argv[1:] if argv is None else list(argv))


def _child_command(argv: Sequence[str]) -> List[str]:
    return [sys.executable, "-m", "nnunet_dyntransnet.inference.predict", *argv]


def _supervise(argv: Sequence[str]) -> int:
    """The prediction in a child under the supervisor (utilities/processes.py), with nnU-Net's preprocessing and
    export workers in its process group: Ctrl-C or SIGTERM stops them all, the child removes its unfinished output,
    and this exits 130 or 143 with a line that says so. Otherwise the child's exit status."""
    from nnunet_dyntransnet.utilities import processes
    from nnunet_dyntransnet.utilities.staging import exit_code_of, sigterm_raises

    stopped: List[str] = []
    try:
        with sigterm_raises():
            return processes.run(_child_command(argv), env={**os.environ, SUPERVISED_ENV: "1"},
                                 stopped=stopped).returncode
    except KeyboardInterrupt as e:
        what = "the prediction (with nnU-Net's workers) " + (stopped[0].split(" ", 1)[1] if stopped else "stopped")
        print(f"{COMMAND}: {str(e) or 'interrupted (Ctrl-C)'}; {what}; no prediction was written", file=sys.stderr)
        return exit_code_of(e)


if __name__ == "__main__":
    sys.exit(main())
