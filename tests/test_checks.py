"""vaelab.data.checks: what images and labels must be, each failure one line naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.data.checks import check_class_names, check_images, check_labels, pixels_u8
from vaelab.errors import VaelabError

SOURCE = "data/x.npz (array 'x_train')"


def _images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_uint8_images_pass_unchanged_in_every_accepted_shape() -> None:
    images = _images()
    for shaped in (images, images.reshape(5, 784), images[..., None], images[:, None]):
        out = check_images(shaped, SOURCE)
        assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
        np.testing.assert_array_equal(out, images)


def test_floats_that_were_uint8_come_back_exactly() -> None:
    images = _images()
    for dtype in (np.float16, np.float32, np.float64):
        floats = images.astype(dtype) / dtype(255)
        np.testing.assert_array_equal(check_images(floats, SOURCE), images)


def test_floats_are_rounded_to_the_nearest_level_halves_to_even() -> None:
    values = np.array([0.0, 0.1 / 255, 0.6 / 255, 127.5 / 255, 128.5 / 255, 1.0], np.float64)
    assert pixels_u8(values, SOURCE).tolist() == [0, 0, 1, 128, 128, 255]


def test_integers_and_booleans_in_range_are_converted_losslessly() -> None:
    images = _images()
    np.testing.assert_array_equal(check_images(images.astype(np.int64), SOURCE), images)
    binary = images > 127
    np.testing.assert_array_equal(check_images(binary, SOURCE), binary.astype(np.uint8) * 255)


@pytest.mark.parametrize(("array", "words"), [
    (np.zeros((5, 28, 27), np.uint8), ["shape (5, 28, 27)", "28 x 28 grey", "--resize"]),
    (np.zeros((5, 28, 28, 3), np.uint8), ["colour images", "(5, 28, 28, 3)", "--resize"]),
    (np.zeros((5, 700), np.uint8), ["an array of shape (5, 700)", "(N, 784)"]),
    (np.zeros((0, 28, 28), np.uint8), ["holds no images", "(N, 28, 28)"]),
    (np.zeros(7, np.uint8), ["an array of shape (7,)", "(N, 28, 28)"]),
    (np.full((2, 28, 28), 1.5, np.float32), ["from 1.5 to 1.5", "floats in [0, 1]"]),
    (np.full((2, 28, 28), 200.0), ["0-255 levels", "divide by 255"]),
    (np.full((2, 28, 28), -0.25), ["from -0.25", "[0, 1]"]),
    (np.full((2, 28, 28), np.nan, np.float32), ["1568 NaN or infinite", "[0, 1]"]),
    (np.full((2, 28, 28), np.inf), ["NaN or infinite"]),
    # Beyond float32's range: refused on its value, not turned infinite by a cast first.
    (np.full((2, 28, 28), 1e300), ["float64 pixel values from 1e+300 to 1e+300", "[0, 1]"]),
    (np.full((2, 28, 28), 256, np.int32), ["int32 pixel values from 256 to 256", "0 to 255"]),
    (np.full((2, 28, 28), -1, np.int8), ["from -1", "0 to 255"]),
    (np.zeros((2, 28, 28), np.complex64), ["complex64 values", "uint8"]),
    (np.zeros((2, 5000, 28), np.uint8), ["5000 x 28 pixels", "at most 4096"]),
])
def test_each_image_check_fails_with_one_line_naming_the_file(array: np.ndarray,
                                                              words: list[str]) -> None:
    with pytest.raises(VaelabError) as info:
        check_images(array, SOURCE)
    message = str(info.value)
    assert message.startswith(SOURCE) and "\n" not in message, message
    for word in words:
        assert word in message, (word, message)


def test_resize_converts_what_the_check_refuses() -> None:
    grey = _images()
    colour = np.repeat(grey[..., None], 3, axis=3)  # R = G = B: its luma is the grey value
    np.testing.assert_array_equal(check_images(colour, SOURCE, resize=True), grey)
    wide = np.full((1, 28, 56), 255, np.uint8)  # fitted into 28 x 28: 14 rows, black above/below
    out = check_images(wide, SOURCE, resize=True)[0]
    assert (out[:7] == 0).all() and (out[-7:] == 0).all() and (out[7:21] >= 254).all()


def test_labels_one_int64_per_image() -> None:
    labels = np.array([3, 0, 9], np.uint8)
    out = check_labels(labels, "y.npy", 3, "x.npy")
    assert out.dtype == np.int64 and out.tolist() == [3, 0, 9]
    assert check_labels(labels[:, None], "y.npy", 3, "x.npy").shape == (3,)


@pytest.mark.parametrize(("labels", "n", "words"), [
    (np.zeros(4, np.int64), 3, ["4 labels but x.npy holds 3 images"]),
    (np.zeros((3, 2), np.int64), 3, ["labels of shape (3, 2)", "(N,)"]),
    (np.zeros(3, np.float32), 3, ["float32 labels", "integers"]),
    (np.array([0, -1, 2]), 3, ["from -1 to 2", "from 0 to 9999"]),
    (np.array([0, 10_000, 2]), 3, ["from 0 to 10000", "0 to 9999"]),
])
def test_each_label_check_fails_with_one_line(labels: np.ndarray, n: int,
                                              words: list[str]) -> None:
    with pytest.raises(VaelabError) as info:
        check_labels(labels, "y.npy", n, "x.npy")
    message = str(info.value)
    assert message.startswith("y.npy") and "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_class_names_cover_every_label_and_are_distinct() -> None:
    assert check_class_names(["cat", "dog"], 1, "c") == ("cat", "dog")
    for names, largest, word in ((["cat"], 1, "labels go up to 1"),
                                 (["cat", "cat"], 1, "repeated"),
                                 (["cat", " "], 1, "empty")):
        with pytest.raises(VaelabError, match=word):
            check_class_names(names, largest, "c")
