"""A folder of image files (PNG, JPEG, BMP, GIF, TIFF, WebP, PNM), read with Pillow.

Laid out as torchvision's ImageFolder: a subfolder per class gives the labels, the class names
being the subfolder names in sorted order (each class folder is searched to any depth);
image files directly in the folder, with no subfolders, are unlabelled. Subfolders named
``train`` (or ``training``) and ``test`` (or ``testing``) are the two splits, each laid out
the same way; without them a test split is held out. Hidden files and files that are not
images (by suffix) are skipped.

Every image must be 28 x 28 grey (8-bit, or 1-bit black and white), read from its header
before anything is decoded; ``resize`` converts any other size or colour
(``vaelab.data.convert``) up to ``MAX_IMAGE_PIXELS``. Only the formats above are opened,
so no file can reach Pillow's plugins that call outside programs (EPS).
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from vaelab.data.checks import IMAGE_SHAPE, RESIZE_HINT
from vaelab.data.formats import DataFormat, RawParts, register_format
from vaelab.data.limits import (
    MAX_IMAGE_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_ITEMS,
    image_file_limit,
)
from vaelab.errors import VaelabError

__all__ = ["IMAGE_SUFFIXES", "PILLOW_FORMATS", "read_image", "read_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                  ".pbm", ".ppm", ".pnm")
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
_GREY_MODES = ("L", "1")
_SPLIT_FOLDERS = {"train": "train", "training": "train", "test": "test", "testing": "test"}


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _listing(folder: Path) -> tuple[list[Path], list[Path]]:
    """The image files and the subfolders directly in ``folder``, sorted; hidden ones skipped."""
    images, folders = [], []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise VaelabError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders.append(entry)
        elif _is_image(entry) and entry.is_file():
            images.append(entry)
    return images, folders


def _claims(path: Path) -> bool:
    if not path.is_dir():
        return False
    images, folders = _listing(path)
    if images:
        return True
    for folder in folders[:1000]:
        inner_images, inner_folders = _listing(folder)
        if inner_images or inner_folders:
            return True
    return False


def _images_below(folder: Path) -> list[Path]:
    """Every image file under ``folder``, at any depth, in sorted order."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [p for p in (Path(root) / n for n in sorted(names)) if _is_image(p)]
        if len(found) > MAX_ITEMS:
            raise VaelabError(f"{folder} holds more than {MAX_ITEMS:,} images; vaelab reads "
                              "fewer")
    return found


def _collect(folder: Path) -> tuple[list[Path], list[str] | None, tuple[str, ...]]:
    """The image files of one split, their class names (None: unlabelled) and the classes."""
    images, folders = _listing(folder)
    if images and folders:
        raise VaelabError(f"{folder} holds both image files ({images[0].name}) and subfolders "
                          f"({folders[0].name}); put every image in a class folder, or use no "
                          "subfolders for unlabelled images")
    if not folders:
        if not images:
            raise VaelabError(f"{folder} holds no image files; expected "
                              f"{', '.join(IMAGE_SUFFIXES[:4])}, ... images")
        return images, None, ()
    files: list[Path] = []
    names: list[str] = []
    for class_folder in folders:
        inside = _images_below(class_folder)
        if not inside:
            raise VaelabError(f"class folder {class_folder} holds no image files; remove it or "
                              "add its images")
        files += inside
        names += [class_folder.name] * len(inside)
    return files, names, tuple(f.name for f in folders)


def read_image(path: Path, resize: bool) -> np.ndarray:
    """One image file as uint8 (28, 28); its size and mode are checked before decoding."""
    from PIL import Image, UnidentifiedImageError

    from vaelab.data.convert import image_to_grey28

    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            raise VaelabError(f"{path} is larger than {MAX_IMAGE_FILE_BYTES >> 20} MB; expected "
                              "a small image")
        with warnings.catch_warnings():
            # Pillow warns of damage it reads past (corrupt EXIF, bad tags) and of bombs: here
            # every warning is an error, so a damaged file is refused rather than half-read.
            warnings.simplefilter("error")
            with Image.open(path, formats=PILLOW_FORMATS) as image:
                width, height = image.size
                if size > image_file_limit(width * height):
                    raise VaelabError(f"{path} holds {size:,} bytes for {width} x {height} "
                                      "pixels, far more than an image needs; it is corrupt or "
                                      "a decompression bomb")
                grey = image.mode in _GREY_MODES
                if (width, height) != IMAGE_SHAPE[::-1] or not grey:
                    what = f"{width} x {height}, {image.mode}"
                    if not resize:
                        raise VaelabError(f"{path} is a {what} image; expected 28 x 28 grey "
                                          f"(mode L or 1); {RESIZE_HINT}")
                    if width * height > MAX_IMAGE_PIXELS:
                        raise VaelabError(f"{path} is a {what} image, more than --resize "
                                          f"decodes ({MAX_IMAGE_PIXELS:,} pixels)")
                    return image_to_grey28(image)
                image.load()
                return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    except VaelabError:
        raise
    except UnidentifiedImageError:
        raise VaelabError(f"{path} is not an image file vaelab reads (expected "
                          f"{', '.join(PILLOW_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise VaelabError(f"{path} claims more pixels than vaelab decodes ({MAX_IMAGE_PIXELS:,} "
                          "at most); it is corrupt or a decompression bomb") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError,
            TypeError, KeyError, RuntimeError, OverflowError, ZeroDivisionError, Warning) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise VaelabError(f"{path} is not a readable image ({reason}); expected a 28 x 28 grey "
                          "image file") from None


def _read_split(folder: Path, resize: bool) -> tuple[np.ndarray, list[str] | None,
                                                     tuple[str, ...]]:
    """One split's images, their class names (None: unlabelled) and its classes."""
    files, names, classes = _collect(folder)
    images = np.empty((len(files), *IMAGE_SHAPE), np.uint8)
    for i, file in enumerate(files):
        images[i] = read_image(file, resize)
    return images, names, classes


def _split_folders(path: Path) -> dict[str, Path] | None:
    """The train and test folders, when ``path`` is split into them (else None)."""
    images, folders = _listing(path)
    splits = {_SPLIT_FOLDERS.get(f.name.lower()): f for f in folders}
    if images or not folders or None in splits:
        return None
    if "train" not in splits:
        raise VaelabError(f"{path} holds a test folder but no train (or training) folder")
    return {split: folder for split, folder in splits.items() if split is not None}


def _where(root: Path, folder: Path, n: int) -> str:
    """A split's folder, relative to the dataset's, and how many images it gave."""
    inside = folder.relative_to(root).as_posix()
    return f"{'' if inside == '.' else inside + '/'}*: {n:,} image files"


def read_image_folder(path: Path, resize: bool) -> RawParts:
    splits = _split_folders(path) or {"train": path}
    train_images, train_names, classes = _read_split(splits["train"], resize)
    index = {name: i for i, name in enumerate(classes)}
    train_labels = None if train_names is None else \
        np.array([index[n] for n in train_names], np.int64)
    test_images = test_labels = None
    files = {"train_images": _where(path, splits["train"], len(train_images))}
    if "test" in splits:
        test_images, test_names, test_classes = _read_split(splits["test"], resize)
        if (test_names is None) != (train_names is None):
            which = "train" if test_names is None else "test"
            raise VaelabError(f"{path}: the {which} images are in class folders but the "
                              "others are not; lay out both splits the same way")
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise VaelabError(f"{splits['test']} has class folder {unknown[0]!r}, which "
                              f"{splits['train']} lacks; expected the same classes")
        if test_names is not None:
            test_labels = np.array([index[n] for n in test_names], np.int64)
        files["test_images"] = _where(path, splits["test"], len(test_images))
    return RawParts(train_images, train_labels, test_images, test_labels,
                    classes if train_names is not None else None, files)


register_format(DataFormat(
    name="image-folder",
    description="a folder of image files (PNG, JPEG, ...), with a subfolder per class for "
                "labels",
    claims=_claims,
    read=read_image_folder,
))
