"""How far a trained DynTransNet's attention is from a plain average: the spread of its logits over the keys.

    python docs/comparison/screens/attention_spread.py OUT.json FOLDS RESULT_FOLDER...

Each RESULT_FOLDER is a trained trainer's folder (``.../nnUNetTrainerDynTransNet_..._NoMirroring__nnUNetPlans__3d_fullres_narrow``);
FOLDS is ``"0 1"``. With nnU-Net's environment variables set to the screens' work folder (``nnUNet_preprocessed`` is
read for the validation cases of ``splits_final.json``).

For every D-MSA module, each fold's model runs on its own validation cases (one forward pass of the whole preprocessed
image, as in ``rm_logit_split.py``), and the script reports, averaged over queries, heads and cases:

- ``score_std_over_keys``: the standard deviation over the keys of the scaled dot products ``q k^T / sqrt(d)``. Near 0,
  the softmax is near uniform: the attention averages its values whatever the query;
- ``bias_std_over_keys``: the same for D-MSA's bias ``Delta = ReLU(x W_d + b_d)``, the other term of the logits;
- ``qkv_weight_std``: the standard deviation of the query, key and value projection's weights (ViT's init: 0.02);
- ``fresh_score_std_over_keys`` and ``fresh_bias_std_over_keys``: the same two spreads once the transformer blocks'
  linear layers are drawn again from the init the model was built with (its recorded ``linear_init``; ViT's before
  the option), the rest of the trained model unchanged: what the attention would do had those layers not trained.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rm_logit_split import _cases  # noqa: E402


def _spread_hook(records: list):
    """A forward hook on a D-MSA module that appends (score spread, bias spread) of that call to ``records``."""
    def hook(module, inputs, output):
        x = inputs[0]
        q, k, _ = module.queries_keys_values(x, inputs[1] if len(inputs) > 1 else None)
        scores = (q * module.scale) @ k.transpose(-2, -1)  # (B, H, N, N)
        bias = module.key_bias(x)  # (B, H, 1, N)
        records.append((scores.std(-1).mean().item(), bias.std(-1).mean().item()))
    return hook


def attention_spread(folder: Path, folds: list) -> dict:
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    per_fold = {}
    for fold in folds:
        predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False,
                                    use_mirroring=False)
        predictor.initialize_from_trained_model_folder(str(folder), (fold,), "checkpoint_final.pth")
        network = predictor.network.eval()
        network.decoder.deep_supervision = False
        modules = {name: m for name, m in network.named_modules() if getattr(m, "bias_proj", None) is not None}
        records = {name: [] for name in modules}
        for name, module in modules.items():
            module.register_forward_hook(_spread_hook(records[name]))
        preprocessed = Path(nnUNet_preprocessed) / predictor.plans_manager.dataset_name
        data_folder = preprocessed / predictor.configuration_manager.data_identifier
        cases = _cases(preprocessed, fold)
        dataset = infer_dataset_class(str(data_folder))(str(data_folder), cases)
        images = [torch.from_numpy(np.asarray(dataset.load_case(case)[0])[None]).float() for case in cases]
        trained = _mean_spreads(network, images, records)
        qkv_std = {name: float(m.qkv.weight.std()) for name, m in modules.items()}
        recorded = predictor.configuration_manager.configuration.get("dyntransnet_network_options") or {}
        _redraw_linears(network, recorded.get("linear_init", "vit"))
        fresh = _mean_spreads(network, images, records)
        per_fold[f"fold_{fold}"] = {
            name: {"score_std_over_keys": round(float(trained[name][0]), 4),
                   "bias_std_over_keys": round(float(trained[name][1]), 4),
                   "qkv_weight_std": round(qkv_std[name], 4),
                   "fresh_score_std_over_keys": round(float(fresh[name][0]), 4),
                   "fresh_bias_std_over_keys": round(float(fresh[name][1]), 4)}
            for name in modules}
    return per_fold


def _mean_spreads(network: torch.nn.Module, images: list, records: dict) -> dict:
    """Run ``network`` on every image; per hooked module, the (score, bias) spreads averaged over the calls."""
    for calls in records.values():
        calls.clear()
    with torch.no_grad():
        for image in images:
            network(image)
    return {name: np.mean(calls, axis=0) for name, calls in records.items()}


def _redraw_linears(network: torch.nn.Module, linear_init: str) -> None:
    """Draw the transformer blocks' linear layers again as the network's constructor does (seeded)."""
    from nnunet_dyntransnet.network.dyntransnet import _init_transformer_weights

    torch.manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()  # torch's fan-in init, what "fan_in" keeps
            if linear_init == "vit":
                _init_transformer_weights(module)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    out, folds = Path(sys.argv[1]), [int(f) for f in sys.argv[2].split()]
    result = {"folds": folds, "checkpoint": "checkpoint_final.pth",
              "models": {Path(f).name: attention_spread(Path(f), folds) for f in sys.argv[3:]}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
