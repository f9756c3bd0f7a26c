"""Synthetic liver phantom: CT-like (HU) or MRI-like volumes with liver and tumor labels.

Made so that intensity alone does not solve it: the spleen and kidneys share the liver's
intensity, stomach and bowel contents look like hypodense tumors, enhanced vessels like
hyperdense ones; livers are lobulated, tumors vary in number (zero included), size,
contrast and texture; images carry noise, a smooth bias field and anisotropic spacing.
Every case is reproducible from ``(seed, index)``.

    dyntransnet_make_phantom [-d 990] [-n 40] [--test 8] [--modality ct|mr] [--tumors standard|lits] [--seed 0]
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

__all__ = ["PhantomSpec", "TumorProfile", "TUMOR_PROFILES", "make_case", "write_phantom_dataset", "main"]


@dataclass(frozen=True)
class TumorProfile:
    """How many tumors a case holds, how large and how contrasted they are.

    Attributes:
        counts: the tumor count is drawn uniformly from these (0: a case without tumor).
        radius_mm: a tumor's mean radius is drawn uniformly from this range; each axis then varies by
            -25% to +25%, the edge is wobbled, and the tumor is clipped to the liver.
        contrast: the tumor's mean offset from liver, in units of the liver's texture scale (0.12 x the
            liver-fat difference: 25 HU in CT), drawn uniformly from this range; hypo- or hyperdense
            with equal chance.
    """

    counts: Tuple[int, ...]
    radius_mm: Tuple[float, float]
    contrast: Tuple[float, float] = (2.5, 5.0)


# "standard": the phantom since version 0.1 (the demo's and the tests'). "lits": the tumor burden of the
# equal-time comparison (docs/comparison/README.md, "The phantom"): larger lesions (3 to 7 cm across, inside the
# range LiTS's lesions span, and large enough at 4 mm voxels to be more than a boundary), in more cases (1 in 8
# without tumor), at the same contrast, so that a network that learns tumors in a short budget can show it.
TUMOR_PROFILES = {
    "standard": TumorProfile(counts=(0, 1, 1, 2, 2, 3, 4), radius_mm=(10.0, 26.0)),
    "lits": TumorProfile(counts=(0, 1, 1, 2, 2, 3, 3, 4), radius_mm=(15.0, 35.0)),
}


@dataclass(frozen=True)
class PhantomSpec:
    """Grid and look of the phantom.

    Attributes:
        shape: voxels (z, y, x).
        spacing: mm (z, y, x); z is thicker, as in clinical scans.
        modality: ``"ct"`` (Hounsfield units) or ``"mr"`` (arbitrary units, strong bias field).
        tumors: a name in :data:`TUMOR_PROFILES`.
    """

    shape: Tuple[int, int, int] = (32, 64, 64)
    spacing: Tuple[float, float, float] = (5.0, 4.0, 4.0)
    modality: str = "ct"
    tumors: str = "standard"

    def __post_init__(self):
        if self.tumors not in TUMOR_PROFILES:
            raise ValueError(f"tumors={self.tumors!r}: choose one of {sorted(TUMOR_PROFILES)}")


# mean intensity of each tissue: (ct HU, mr a.u.)
TISSUE = {
    "air": (-1000.0, 0.0), "fat": (-100.0, 900.0), "muscle": (40.0, 350.0), "liver": (110.0, 600.0),
    "spleen": (115.0, 610.0), "kidney": (105.0, 580.0), "vessel": (170.0, 850.0), "fluid": (10.0, 250.0),
    "bone": (500.0, 150.0),
}


def _smooth_field(rng: np.random.Generator, shape, cycles=(2, 3, 3), waves: int = 8) -> np.ndarray:
    """Zero-mean, unit-std random field: a sum of plane waves of at most ``cycles`` periods per axis."""
    axes = [np.linspace(-np.pi, np.pi, n, dtype=np.float32) for n in shape]
    grid = np.ix_(*axes)
    field = np.zeros(shape, np.float32)
    for _ in range(waves):
        freq = [rng.uniform(-c, c) for c in cycles]
        field += np.cos(sum(f * g for f, g in zip(freq, grid)) + rng.uniform(0, 2 * np.pi))
    return (field - field.mean()) / (field.std() + 1e-8)


def _ellipsoid(coords, center, radii, noise: Optional[np.ndarray] = None, wobble: float = 0.0) -> np.ndarray:
    d = sum(((c - m) / r) ** 2 for c, m, r in zip(coords, center, radii))
    if noise is not None:
        d = d + wobble * noise
    return d < 1


@dataclass(frozen=True)
class _Grid:
    """A case's voxel grid: ``coords`` (z, y, x) in mm from the volume centre, the half extents ``ext`` (mm),
    ``shape``, ``spacing`` and the tissue table's column (0 CT, 1 MRI)."""

    coords: Tuple[np.ndarray, ...]
    ext: Tuple[float, ...]
    shape: Tuple[int, ...]
    spacing: Tuple[float, ...]
    col: int


def make_case(spec: PhantomSpec, seed: int, index: int) -> Tuple[np.ndarray, np.ndarray]:
    """One phantom case: ``image`` float32 and ``label`` uint8 (0 background, 1 liver, 2 tumor), both (z, y, x).

    The steps draw from one generator in a fixed order (body, liver, organs, vessels, tumors, acquisition), so a
    seed and index always give the same case."""
    rng = np.random.default_rng([seed, index])
    shape = spec.shape
    coords = np.meshgrid(*[(np.arange(n) - n / 2 + 0.5) * s for n, s in zip(shape, spec.spacing)], indexing="ij")
    grid = _Grid(tuple(coords), tuple(n * s / 2 for n, s in zip(shape, spec.spacing)), tuple(shape),
                 tuple(spec.spacing), 0 if spec.modality == "ct" else 1)
    tissue = np.full(shape, TISSUE["air"][grid.col], dtype=np.float32)
    body, inner = _body(rng, grid, tissue)
    liver, liver_centre = _liver(rng, grid, inner)
    _organs(rng, grid, tissue, body, inner, liver)
    _liver_vessels(rng, grid, tissue, liver, liver_centre)
    label = _tumors(rng, grid, tissue, liver, TUMOR_PROFILES[spec.tumors])
    return _acquisition(rng, grid, tissue, body, spec.modality), label


def _body(rng, grid: _Grid, tissue: np.ndarray):
    """The body (fat) and its inner part (muscle), written into ``tissue``; returns both masks."""
    _, y, x = grid.coords
    ext, col = grid.ext, grid.col
    body = _ellipsoid((y, x), (0, 0), (ext[1] * rng.uniform(0.78, 0.9), ext[2] * rng.uniform(0.85, 0.95)))
    body = np.broadcast_to(body, grid.shape)
    tissue[body] = TISSUE["fat"][col]
    inner = np.broadcast_to(_ellipsoid((y, x), (0, 0), (ext[1] * 0.72, ext[2] * 0.82)), grid.shape)
    tissue[inner] = TISSUE["muscle"][col]
    return body, inner


def _liver(rng, grid: _Grid, inner: np.ndarray):
    """A few overlapping ellipsoids on the patient's right (image left), with a lobulated edge; returns the mask
    and the lobes' centre (y, x in mm)."""
    ext = grid.ext
    lobes = np.zeros(grid.shape, bool)
    cy, cx = rng.uniform(-0.15, 0.05) * ext[1], rng.uniform(-0.45, -0.3) * ext[2]
    for _ in range(rng.integers(2, 5)):
        center = (rng.uniform(-0.2, 0.2) * ext[0], cy + rng.uniform(-0.15, 0.15) * ext[1],
                  cx + rng.uniform(-0.15, 0.2) * ext[2])
        radii = (rng.uniform(0.55, 0.8) * ext[0], rng.uniform(0.33, 0.5) * ext[1], rng.uniform(0.28, 0.42) * ext[2])
        lobes |= _ellipsoid(grid.coords, center, radii, _smooth_field(rng, grid.shape, (2.5, 4, 4)), 0.35)
    return lobes & inner, (cy, cx)


def _organs(rng, grid: _Grid, tissue: np.ndarray, body: np.ndarray, inner: np.ndarray, liver: np.ndarray) -> None:
    """Organs that look like liver (spleen, kidneys), fluid that looks like a hypodense tumor (stomach), the aorta
    and the spine, then the liver over them, into ``tissue``."""
    coords, ext, shape, col = grid.coords, grid.ext, grid.shape, grid.col
    _, y, x = coords
    spleen = _ellipsoid(coords, (rng.uniform(-0.2, 0.2) * ext[0], rng.uniform(0.0, 0.3) * ext[1], rng.uniform(0.45, 0.6) * ext[2]),
                        (rng.uniform(0.3, 0.5) * ext[0], rng.uniform(0.15, 0.25) * ext[1], rng.uniform(0.1, 0.16) * ext[2]),
                        _smooth_field(rng, shape), 0.3) & inner & ~liver
    kidneys = np.zeros(shape, bool)
    for side in (-1, 1):
        kidneys |= _ellipsoid(coords, (rng.uniform(-0.4, 0.1) * ext[0], 0.45 * ext[1], side * 0.33 * ext[2]),
                              (0.3 * ext[0], rng.uniform(0.12, 0.16) * ext[1], rng.uniform(0.08, 0.11) * ext[2]))
    kidneys &= inner & ~liver
    stomach = _ellipsoid(coords, (rng.uniform(0.0, 0.3) * ext[0], rng.uniform(-0.35, -0.15) * ext[1], rng.uniform(0.1, 0.35) * ext[2]),
                         (0.35 * ext[0], rng.uniform(0.1, 0.2) * ext[1], rng.uniform(0.1, 0.2) * ext[2]),
                         _smooth_field(rng, shape), 0.4) & inner & ~liver & ~spleen
    aorta = np.broadcast_to(_ellipsoid((y, x), (0.3 * ext[1], 0.05 * ext[2]), (7.0, 7.0)), shape) & inner
    spine = np.broadcast_to(_ellipsoid((y, x), (0.55 * ext[1], 0.0), (14.0, 14.0)), shape) & body
    tissue[spleen] = TISSUE["spleen"][col]
    tissue[kidneys] = TISSUE["kidney"][col]
    tissue[stomach] = TISSUE["fluid"][col]
    tissue[spine] = TISSUE["bone"][col]
    tissue[aorta] = TISSUE["vessel"][col]
    tissue[liver] = TISSUE["liver"][col]


def _liver_vessels(rng, grid: _Grid, tissue: np.ndarray, liver: np.ndarray, centre) -> None:
    """Bright tubes inside the liver (part of the liver label), into ``tissue``."""
    z, y, x = grid.coords
    cy, cx = centre
    for _ in range(rng.integers(1, 4)):
        start = np.array([rng.uniform(-0.3, 0.3) * grid.ext[0], cy, cx])
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        rel = np.stack([z - start[0], y - start[1], x - start[2]])
        along = np.tensordot(direction, rel, axes=1)
        dist = np.sqrt(np.maximum((rel ** 2).sum(0) - along ** 2, 0))
        tissue[(dist < rng.uniform(2.5, 4.5)) & (np.abs(along) < 40) & liver] = TISSUE["vessel"][grid.col]


def _tumors(rng, grid: _Grid, tissue: np.ndarray, liver: np.ndarray, profile) -> np.ndarray:
    """As many tumors as the profile draws, each hypo- or hyperdense with its own texture, into ``tissue``; returns
    the label map (1 liver, 2 tumor)."""
    col, shape = grid.col, grid.shape
    label = liver.astype(np.uint8)
    liver_std = 0.12 * abs(TISSUE["liver"][col] - TISSUE["fat"][col])
    n_tumors = rng.choice(list(profile.counts))
    candidates = np.argwhere(ndimage.binary_erosion(liver, iterations=2))
    for _ in range(n_tumors if len(candidates) else 0):
        center = candidates[rng.integers(len(candidates))] - np.array(shape) / 2 + 0.5
        center = center * np.array(grid.spacing)
        radius = rng.uniform(*profile.radius_mm)
        radii = radius * rng.uniform(0.75, 1.25, size=3)
        tumor = _ellipsoid(grid.coords, center, radii, _smooth_field(rng, shape, (3, 5, 5)), 0.3) & liver
        sign = rng.choice([-1.0, 1.0])
        contrast = sign * rng.uniform(*profile.contrast) * liver_std
        texture = rng.uniform(0.2, 0.6) * liver_std * _smooth_field(rng, shape, (5, 9, 9))
        tissue[tumor] = TISSUE["liver"][col] + contrast + texture[tumor]
        label[tumor] = 2
    return label


def _acquisition(rng, grid: _Grid, tissue: np.ndarray, body: np.ndarray, modality: str) -> np.ndarray:
    """The scanner: blur, a smooth bias field and noise (CT additive; MRI multiplicative bias, Rician-like noise)."""
    shape = grid.shape
    image = ndimage.gaussian_filter(tissue, sigma=(0.5, 0.7, 0.7))
    if modality == "ct":
        image = image + 15.0 * _smooth_field(rng, shape, (1, 1.5, 1.5)) * body
        image = image + rng.normal(0, rng.uniform(12, 22), shape)
    else:
        image = image * (1 + 0.25 * _smooth_field(rng, shape, (1, 1.5, 1.5)))
        image = np.abs(image + rng.normal(0, rng.uniform(20, 40), shape))
    return image.astype(np.float32)


def write_phantom_dataset(dataset_id: int = 990, n_train: int = 40, n_test: int = 8, modality: str = "ct",
                          seed: int = 0, spec: Optional[PhantomSpec] = None, overwrite: bool = False,
                          replace_other_name: bool = False, tumors: str = "standard"):
    """Write ``$nnUNet_raw/DatasetNNN_LiverPhantomCT`` (or ``MR``), with held-out labels in ``labelsTs``."""
    import SimpleITK as sitk
    from tqdm import tqdm

    from nnunet_dyntransnet.dataset_conversion.raw_dataset import dataset_folder_name, staged_dataset, write_dataset_json

    spec = spec or PhantomSpec(modality=modality, tumors=tumors)
    name = f"LiverPhantom{spec.modality.upper()}"
    folder_name = dataset_folder_name(dataset_id, name)
    with staged_dataset(dataset_id, name, overwrite, replace_other_name=replace_other_name) as staging:
        (staging / "labelsTs").mkdir()
        for i in tqdm(range(n_train + n_test), desc="phantom", unit="case"):
            image, label = make_case(spec, seed, i)
            split = "Tr" if i < n_train else "Ts"
            for array, folder, suffix in ((image, f"images{split}", "_0000"), (label, f"labels{split}", "")):
                img = sitk.GetImageFromArray(array)
                img.SetSpacing(tuple(float(s) for s in spec.spacing[::-1]))
                sitk.WriteImage(img, str(staging / folder / f"phantom_{i:03d}{suffix}.nii.gz"), useCompression=True)
        write_dataset_json(staging, folder_name, "CT" if spec.modality == "ct" else "MRI", n_train, False,
                           description=f"synthetic liver phantom ({spec.modality}, {spec.tumors} tumors), seed {seed}", license="CC0")
    return staging.parent / folder_name


def main(argv: Optional[Sequence[str]] = None) -> int:
    from nnunet_dyntransnet.dataset_conversion.raw_dataset import ConversionError
    from nnunet_dyntransnet.utilities.command import run_command

    parser = argparse.ArgumentParser(prog="dyntransnet_make_phantom", description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", type=int, default=990, help="dataset id (default 990)")
    parser.add_argument("-n", type=int, default=40, help="training cases (default 40)")
    parser.add_argument("--test", type=int, default=8, help="held-out cases with labels in labelsTs (default 8)")
    parser.add_argument("--modality", choices=("ct", "mr"), default="ct")
    parser.add_argument("--tumors", choices=sorted(TUMOR_PROFILES), default="standard",
                        help="tumor profile: 'standard' (default; the demo's) or 'lits' (larger lesions in more cases; "
                             "the equal-time comparison's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing phantom with the same id")
    parser.add_argument("--replace_other_name", action="store_true",
                        help="with --overwrite: also replace a dataset with the same id and another name")
    args = parser.parse_args(argv)
    if args.n < 1 or args.test < 0:
        parser.error(f"-n must be >= 1 and --test >= 0, got -n {args.n} --test {args.test}")
    if args.replace_other_name and not args.overwrite:
        parser.error("--replace_other_name only works together with --overwrite")

    def write() -> str:
        target = write_phantom_dataset(args.d, args.n, args.test, args.modality, args.seed, overwrite=args.overwrite,
                                       replace_other_name=args.replace_other_name, tumors=args.tumors)
        return f"wrote {target}"

    return run_command("dyntransnet_make_phantom", write, (ConversionError,))
