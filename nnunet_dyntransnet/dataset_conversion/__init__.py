"""Datasets in nnU-Net's raw format: converters from public liver datasets (LiTS, MSD Task03_Liver, ATLAS) and the
synthetic liver phantom (``phantom``)."""
