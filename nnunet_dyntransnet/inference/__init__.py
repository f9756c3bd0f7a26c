"""Deployment outside PyTorch: ``dyntransnet_export_onnx`` writes a trained fold as ONNX plus a sidecar,
``dyntransnet_predict_onnx`` runs nnU-Net's inference with it through onnxruntime (``pip install
"nnunet-dyntransnet[onnx]"``)."""
