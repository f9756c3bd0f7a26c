"""Read a 3D scan or label map and refuse what would silently give wrong numbers.

The converters and the report read every file through here. SimpleITK alone is not enough:
its NIfTI reader zero-fills a truncated file and turns NaN and inf voxels into 0 without a
word (measured with SimpleITK 2.5.7), so NIfTI voxels are read once more with nibabel,
which does neither. Label maps are also checked for values outside the dataset's labels
and for non-integer values, which a cast to an integer type would silently truncate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Collection, List, Tuple, Type

import numpy as np
import SimpleITK as sitk

__all__ = ["VolumeError", "IMAGE_ENDINGS", "image_files", "read_image", "check_voxels", "check_label_values", "read_label_array", "format_numbers"]


class VolumeError(ValueError):
    """A file that cannot be used; the message names it and says what to do."""


# the image file types nnU-Net reads (dataset.json's file_ending), longest suffix first where one ends another
IMAGE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".tif", ".tiff", ".png", ".bmp")


def image_files(folder: Path, ending: str, error: Type[Exception] = VolumeError) -> List[Path]:
    """The ``ending`` files of ``folder``, sorted; any other image file there is an error.

    nnU-Net writes one file type per dataset; a folder that mixes ``.nii`` and ``.nii.gz``
    would otherwise be half-read without a word.
    """
    files, stray = [], []
    for f in sorted(Path(folder).iterdir()):
        if not f.is_file():
            continue
        # the endings compared without case: CASE_0000.NII.GZ beside .nii.gz files is a stray, not nothing
        e = next((e for e in IMAGE_ENDINGS if f.name.lower().endswith(e)), None)
        if e == ending and f.name.endswith(ending):
            files.append(f)
        elif e is not None:
            stray.append(f.name)
    if stray:
        raise error(f"{folder} holds {len(stray)} image file(s) that do not end in {ending}, e.g. {stray[0]}; "
                    f"nnU-Net reads one file type per dataset (dataset.json's file_ending {ending}). Convert or "
                    f"move them, so that every case is used")
    return files


def format_numbers(values) -> str:
    """``(1.0, 0.5)`` for any sequence of numpy or Python numbers (no ``np.float64(...)``)."""
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def read_image(path: Path, error: Type[Exception] = VolumeError, ndim: int = 3) -> sitk.Image:
    """Read ``path`` with SimpleITK; it must be a single-channel ``ndim``-D image whose voxels are all on disk.

    Raises:
        error: missing, unreadable, truncated, multi-channel or of another dimensionality.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise error(f"{path}: cannot read it as an image ({first}); is the file complete?") from None
    if image.GetDimension() != ndim:
        raise error(f"{path}: is a {image.GetDimension()}D image of size {image.GetSize()}; expected a {ndim}D "
                    f"volume (split 4D series into 3D files, drop 2D slices)")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise error(f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; expected a "
                    f"single-channel scan")
    return image


def check_voxels(path: Path, image: sitk.Image, error: Type[Exception] = VolumeError) -> None:
    """Every voxel of ``path`` (already read as ``image``) is on disk and finite."""
    if str(path).endswith((".nii", ".nii.gz")):
        import nibabel

        try:
            data = np.asanyarray(nibabel.load(str(path)).dataobj)
        except Exception as e:
            raise error(f"{path}: cannot read its voxels ({type(e).__name__}: {e}); the file looks truncated or "
                        f"corrupt, write or download it again") from None
    else:
        data = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise error(f"{path}: {bad} voxels are NaN or infinite; fix or drop this case")


def check_label_values(path: Path, array: np.ndarray, allowed: Collection[int],
                       error: Type[Exception] = VolumeError) -> None:
    """Refuse label values outside ``allowed`` and non-integer values (0.5 would be truncated to 0)."""
    values = np.unique(array)
    bad = [v for v in values if not (float(v).is_integer() and int(v) in allowed)]
    if bad:
        raise error(f"{path}: label values {format_numbers(bad[:5])} are outside the dataset's labels "
                    f"{format_numbers(sorted(allowed))}; fix the label map or drop the case")


def read_label_array(path: Path, allowed: Collection[int],
                     error: Type[Exception] = VolumeError) -> Tuple[np.ndarray, sitk.Image]:
    """A checked 3D label map -> (int16 array in SimpleITK's z, y, x order, the SimpleITK image)."""
    image = read_image(path, error)
    check_voxels(path, image, error)
    array = sitk.GetArrayFromImage(image)
    check_label_values(path, array, allowed, error)
    return array.astype(np.int16), image
