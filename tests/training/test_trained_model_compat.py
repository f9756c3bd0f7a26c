"""A model trained with an earlier version of the plugin still loads and predicts the same logits.

``tests/data/model_0_1`` is a fold of ``nnUNetTrainerDynTransNetDemoCPU`` (a shipped trainer; narrow, so the
file is small) trained with version 0.1.0 before the package was rearranged and before the
architecture defaults changed, on the tests' tiny dataset (one epoch; the optimizer state is dropped, as
the predictor does not read it), with the logits its network gave on a fixed random patch. nnU-Net finds
the trainer by class name and builds the network from the folder's plans.json; a move of modules, a
renamed parameter or a changed default that the folder does not record would break every trained model.
"""
from pathlib import Path

import numpy as np
import torch

MODEL = Path(__file__).parents[1] / "data" / "model_0_1"


def test_a_fold_trained_with_version_0_1_predicts_the_same_logits():
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_dyntransnet.trainer_search_path import register

    register()
    predictor = nnUNetPredictor(device=torch.device("cpu"), perform_everything_on_device=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(MODEL / "nnUNetTrainerDynTransNetDemoCPU__nnUNetPlans__3d_fullres"),
                                                   (0,), "checkpoint_final.pth")
    network = predictor.network
    network.load_state_dict(predictor.list_of_parameters[0])  # strict: every weight has its place
    network.eval()
    x = torch.randn(1, 1, *predictor.configuration_manager.patch_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = network(x).numpy()
    np.testing.assert_allclose(logits, np.load(MODEL / "logits_seed0.npy"), rtol=1e-4, atol=1e-4)
