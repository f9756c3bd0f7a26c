"""Where a trained DynTransNet's tumor logits come from: RM's shortcut or RM's conv units, at full resolution.

    python docs/comparison/screens/rm_logit_split.py RESULT_FOLDER FOLDS OUT.json

RESULT_FOLDER is a trained trainer's folder (``.../nnUNetTrainerDynTransNet_..._NoMirroring__nnUNetPlans__3d_fullres_narrow``)
whose network has RM's residual sum (``residual_refine=True``, no ``rm_post_activation``); FOLDS is ``"0 1"``. With
nnU-Net's environment variables set to the screens' work folder (``nnUNet_preprocessed`` is read for the validation
cases of ``splits_final.json``).

The full-resolution head is a 1x1 convolution ``W``, and RM's output is ``X + U(X)`` (``X``: FM-M's output, ``U``: the
conv units), so every logit splits exactly into ``W X`` (the shortcut's term) and ``W U(X)`` (the units' term), the
head's bias aside. For the tumor-minus-background logit the script reports, per fold (each fold's model on its own
validation cases), the median of each term over the voxels of four groups: false-positive tumor voxels (predicted tumor,
reference not tumor), those of them outside the reference liver, true tumor voxels, and background voxels within two voxels of the reference liver that the network got right. Each case
is one forward pass of the whole preprocessed image (the phantom's images are the patch size: nnU-Net's sliding
window takes the same single window).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

GROUPS = ("false-positive tumor", "false-positive tumor outside the liver", "true tumor", "background at the liver")


def _cases(preprocessed: Path, fold: int) -> list:
    return json.loads((preprocessed / "splits_final.json").read_text())[fold]["val"]


def split_logits(folder: Path, folds: list) -> dict:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    per_fold = {}
    for fold in folds:
        terms = {g: {"shortcut": [], "units": []} for g in GROUPS}
        predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False,
                                    use_mirroring=False)
        predictor.initialize_from_trained_model_folder(str(folder), (fold,), "checkpoint_final.pth")
        network = predictor.network.eval()
        refine = network.decoder.refine[-1]
        if not refine.residual or refine.after_sum is not None:
            raise SystemExit(f"{folder}: its RM output is not the plain sum X + U(X); the split needs it")
        seen = {}
        refine.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0], out=output))
        weight = network.decoder.heads[-1].weight.detach()[:, :, 0, 0, 0]
        preprocessed = Path(nnUNet_preprocessed) / predictor.plans_manager.dataset_name
        data_folder = preprocessed / predictor.configuration_manager.data_identifier
        cases = _cases(preprocessed, fold)
        dataset = infer_dataset_class(str(data_folder))(str(data_folder), cases)
        for case in cases:
            data, seg, _, _ = dataset.load_case(case)
            image, reference = torch.from_numpy(np.asarray(data)[None]).float(), np.asarray(seg)[0]
            network.decoder.deep_supervision = False
            with torch.no_grad():
                predicted = network(image)[0].argmax(0).numpy()
            x, out = seen["x"][0], seen["out"][0]
            shortcut = torch.einsum("kc,c...->k...", weight, x).numpy()
            units = torch.einsum("kc,c...->k...", weight, out - x).numpy()
            near_liver = ndimage.binary_dilation(reference >= 1, np.ones((3, 3, 3)), iterations=2)
            masks = {"false-positive tumor": (predicted == 2) & (reference != 2),
                     "false-positive tumor outside the liver": (predicted == 2) & (reference == 0),
                     "true tumor": (predicted == 2) & (reference == 2),
                     "background at the liver": near_liver & (reference == 0) & (predicted == 0)}
            for group, mask in masks.items():
                terms[group]["shortcut"] += (shortcut[2] - shortcut[0])[mask].tolist()
                terms[group]["units"] += (units[2] - units[0])[mask].tolist()
        per_fold[f"fold_{fold}"] = {
            group: {"voxels": len(t["shortcut"]),
                    "median tumor-minus-background logit from RM's shortcut": round(float(np.median(t["shortcut"])), 3),
                    "median tumor-minus-background logit from RM's units": round(float(np.median(t["units"])), 3)}
            for group, t in terms.items() if t["shortcut"]}
    return per_fold


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    folder, folds, out = Path(sys.argv[1]), [int(f) for f in sys.argv[2].split()], Path(sys.argv[3])
    result = {"folder": folder.name, "folds": folds, "checkpoint": "checkpoint_final.pth",
              "folds_groups": split_logits(folder, folds)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
