"""The folder that ``nnUNet_extTrainer`` points to.

nnU-Net imports every module in this folder as a top-level module when it looks for a
trainer it does not ship. The one module here re-exports the trainers from
:mod:`nnunet_dyntransnet.trainers`, so nnU-Net gets the very same classes (not copies).
"""
