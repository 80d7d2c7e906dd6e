"""The Pascal VOC segmentation reader, on small files written in exactly that layout."""

import numpy as np
import pytest
from PIL import Image

from gp_search import proxies
from gp_search.proxies.data import dataset as data
from gp_search.proxies.data import voc

IDS = {"train": ["2007_000032", "2007_000039", "2007_000063"], "val": ["2007_000033", "2007_000042"]}


def _mask(rng, size):
    mask = np.zeros((size, size), np.uint8)
    mask[4:12, 3:10] = rng.integers(1, 21)
    mask[8:15, 9:14] = rng.integers(1, 21)
    outline = (mask != np.roll(mask, 1, 0)) | (mask != np.roll(mask, 1, 1))
    mask[outline] = 255  # VOC marks object outlines unlabelled
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = 255  # and a 255 border
    return mask


def write_fixture(base, size=16, seed=0):
    """A VOC-layout directory: JPEGs, palette PNG masks, train/val lists; returns the masks."""
    rng = np.random.default_rng(seed)
    masks = {}
    for split, ids in IDS.items():
        for i in ids:
            masks[i] = _mask(rng, size)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            voc.write_example(base, i, image, masks[i])
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return masks


def test_fixture_is_in_the_voc_format(tmp_path):
    masks = write_fixture(tmp_path)
    png = Image.open(tmp_path / "SegmentationClass" / "2007_000032.png")
    assert png.format == "PNG" and png.mode == "P"
    palette = png.getpalette()
    assert palette[3:6] == [128, 0, 0] and palette[3 * 255:3 * 256] == [224, 224, 192]
    assert np.array_equal(np.asarray(png), masks["2007_000032"])
    assert Image.open(tmp_path / "JPEGImages" / "2007_000032.jpg").format == "JPEG"


def test_reader_round_trips_masks_and_the_ignore_label(tmp_path):
    masks = write_fixture(tmp_path)
    ds = voc.read_voc(tmp_path, size=16)
    assert ds.x_train.shape == (3, 3, 16, 16) and ds.x_test.shape == (2, 3, 16, 16)
    for j, i in enumerate(IDS["train"]):
        assert np.array_equal(ds.y_train[j].numpy(), masks[i])
    for j, i in enumerate(IDS["val"]):
        assert np.array_equal(ds.y_test[j].numpy(), masks[i])
    assert (ds.y_train == 255).any() and ds.num_classes == 21
    assert np.allclose(ds.x_train.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)


def test_resizing_keeps_class_ids_nearest(tmp_path):
    masks = write_fixture(tmp_path)
    ds = voc.read_voc(tmp_path, size=8)
    want = np.asarray(Image.fromarray(masks["2007_000032"]).resize((8, 8), Image.Resampling.NEAREST))
    assert np.array_equal(ds.y_train[0].numpy(), want)
    assert set(np.unique(ds.y_train.numpy())) <= set(np.unique(masks["2007_000032"])) | {
        v for m in masks.values() for v in np.unique(m)}


def test_data_load_finds_the_devkit_layout_under_the_root(tmp_path):
    write_fixture(tmp_path / "VOCdevkit" / "VOC2012")
    ds = data.load("voc", tmp_path)
    assert ds.x_train.shape == (3, 3, 64, 64) and ds.y_test.shape == (2, 64, 64)
    data.clear_cache()


def test_missing_lists_fail_naming_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)ImageSets/Segmentation/train\.txt.*VOCdevkit/VOC2012"):
        data.load("voc", tmp_path)


def test_missing_images_and_masks_fail_up_front_naming_each(tmp_path):
    write_fixture(tmp_path)
    (tmp_path / "SegmentationClass" / "2007_000039.png").unlink()
    (tmp_path / "JPEGImages" / "2007_000042.jpg").unlink()
    with pytest.raises(FileNotFoundError) as err:
        voc.read_voc(tmp_path, size=16)
    text = str(err.value)
    assert "2 listed file(s) missing" in text
    assert "SegmentationClass/2007_000039.png" in text and "JPEGImages/2007_000042.jpg" in text


@pytest.mark.parametrize("damage, match", [
    ("class", r"2007_000063\.png: class id\(s\) \[30\]"),
    ("rgb", r"2007_000063\.png: a mask must be a palette"),
    ("size", r"2007_000063\.png: mask is 8x8 but its image"),
    ("garbage", r"2007_000063\.jpg / .*not a readable"),
    ("id", r"train\.txt: '\.\./x' is not an image id"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path, damage, match):
    write_fixture(tmp_path)
    mask_path = tmp_path / "SegmentationClass" / "2007_000063.png"
    if damage == "class":
        voc.write_example(tmp_path, "2007_000063", np.zeros((16, 16, 3), np.uint8),
                          np.full((16, 16), 30, np.uint8))
    elif damage == "rgb":
        Image.new("RGB", (16, 16)).save(mask_path)
    elif damage == "size":
        voc.write_example(tmp_path / "small", "x", np.zeros((8, 8, 3), np.uint8),
                          np.zeros((8, 8), np.uint8))
        (tmp_path / "small" / "SegmentationClass" / "x.png").replace(mask_path)
    elif damage == "garbage":
        (tmp_path / "JPEGImages" / "2007_000063.jpg").write_bytes(b"not a jpeg")
    else:
        (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n../x\n")
    with pytest.raises(ValueError, match=match):
        voc.read_voc(tmp_path, size=16)


def test_the_voc_proxy_trains_with_ignored_pixels(tmp_path):
    write_fixture(tmp_path, size=20)
    p = proxies.get("seg-voc-unet", data_root=str(tmp_path), steps=2, batch_size=2)
    for loss in ("ce", "ngl", "dice"):
        r = p.evaluate(loss, seed=0)
        assert r.status == "ok" and 0 <= r.accuracy <= 1, r.message
    data.clear_cache()
