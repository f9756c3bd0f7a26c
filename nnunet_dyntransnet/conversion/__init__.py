"""Converters from public liver datasets (LiTS, MSD Task03_Liver, ATLAS) to nnU-Net's raw format."""
