"""``dyntransnet_report``: per-case metrics, statistics, tables and figures from nnU-Net result folders.

Modules: ``metrics`` (Dice, precision, recall, HD95, ASD per case and class), ``stats``
(mean, SD, confidence interval, paired t-test, Wilcoxon signed-rank), ``results`` (finding
predictions, references and logs), ``tables`` (the markdown report), ``figures`` (PNGs),
``cli`` (the command), and ``threshold_baseline`` (the demo's intensity-threshold segmenter).
"""
