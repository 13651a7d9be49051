"""Encoders: the same embeddings as `latentlab embed` (within 1e-6) from the bundled models,
onnxruntime's from tests/fixtures/encoders, every picture route (path, bytes, RGB and RGBA
arrays) giving the same rows, and bad input named. Needs the bundled models (models/)."""

import json
import shutil
import struct
import zlib

import numpy as np
import pytest

import latentlab
from conftest import FIXTURES, ROOT

SENTENCES = json.loads((FIXTURES / "encoders" / "sentences.json").read_text())["sentences"]
GALLERY = json.loads((FIXTURES / "encoders" / "images.json").read_text())["gallery_files"]


@pytest.fixture(scope="module")
def text(models_dir):
    return latentlab.TextEncoder(models=models_dir)


@pytest.fixture(scope="module")
def image(models_dir):
    return latentlab.ImageEncoder(models=models_dir)


def png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG, written here so the test needs no imaging package."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def cosines(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_text_equals_the_cli_and_onnxruntime(cli, text, tmp_path):
    assert (text.name, text.dim) == ("minilm-l6-v2", 384)
    # more than one CLI batch of 32, so the batches line up too
    texts = (SENTENCES * 5)[:40]
    out = tmp_path / "t.npy"
    theirs = cli("embed", "text", "--out", out, *texts)
    ours = text.embed(texts)
    assert ours.dtype == np.float32 and ours.shape == (40, 384) == (theirs["n"], theirs["dim"])
    assert np.abs(ours - np.load(out)).max() <= 1e-6
    reference = np.load(FIXTURES / "encoders" / "text_embeddings.npy")
    assert cosines(text.embed(SENTENCES), reference).min() >= 0.9999


def test_images_equal_the_cli_by_every_route(cli, image, tmp_path):
    files = [ROOT / "www" / "public" / "gallery" / name for name in GALLERY[:3] + ["retina.jpg"]]
    out = tmp_path / "i.npy"
    theirs = cli("embed", "image", "--out", out, *files)
    assert theirs["model"] == image.name
    expected = np.load(out)
    by_path = image.embed([str(f) for f in files[:2]] + files[2:])
    assert by_path.shape == (4, image.dim)
    assert np.abs(by_path - expected).max() <= 1e-6
    by_bytes = image.embed([f.read_bytes() for f in files])
    assert np.abs(by_bytes - expected).max() <= 1e-6


def test_pixel_arrays_equal_the_decoded_file(image, tmp_path):
    rgb = np.random.default_rng(5).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    path = tmp_path / "noise.png"
    path.write_bytes(png(rgb))
    rgba = np.concatenate([rgb, np.full((37, 53, 1), 255, np.uint8)], axis=2)
    rows = image.embed([path, rgb, rgba, np.asfortranarray(rgb)])
    assert np.abs(rows - rows[0]).max() <= 1e-6


def test_other_outputs_match_onnxruntime(image):
    stems = [name.rsplit(".", 1)[0] for name in GALLERY]
    pictures = [FIXTURES / "encoders" / "letterboxed" / f"{stem}.png" for stem in stems]
    embeds = image.embed(pictures)
    features = image.embed(pictures, output="features")
    assert cosines(embeds, np.load(FIXTURES / "encoders" / "image_embeds.npy")).min() >= 0.9999
    assert cosines(features, np.load(FIXTURES / "encoders" / "image_features.npy")).min() >= 0.9999


def test_bad_text_and_pictures_are_named(text, image, tmp_path):
    with pytest.raises(ValueError, match="text 1 is empty"):
        text.embed(["a", ""])
    with pytest.raises(ValueError, match="no text"):
        text.embed([])
    with pytest.raises(TypeError):
        text.embed("one string, not a list")
    with pytest.raises(ValueError, match=r"images\[1\] cannot be decoded"):
        image.embed([np.zeros((4, 4, 3), np.uint8), b"not a picture"])
    with pytest.raises(ValueError, match=r"images\[0\] has shape \(4, 4\)"):
        image.embed([np.zeros((4, 4), np.uint8)])
    with pytest.raises(ValueError, match=r"images\[0\] holds float32"):
        image.embed([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match=r"image 1 is 0×4"):
        image.embed([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 0, 3), np.uint8)])
    with pytest.raises(TypeError, match=r"images\[0\] is a int"):
        image.embed([3])
    missing = tmp_path / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png"):
        image.embed([missing])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nshort")
    with pytest.raises(ValueError, match="broken.png"):
        image.embed([broken])
    with pytest.raises(ValueError, match="features2"):
        image.embed([np.zeros((4, 4, 3), np.uint8)], output="features2")


def test_models_folder_errors_name_the_file(models_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        latentlab.TextEncoder(models=tmp_path)
    shutil.copy(models_dir / "manifest.json", tmp_path / "manifest.json")
    with pytest.raises(FileNotFoundError, match=r"minilm-l6-v2/model\.onnx"):
        latentlab.TextEncoder(models=tmp_path)
    with pytest.raises(ValueError, match=r'no model named "nope"'):
        latentlab.TextEncoder("nope", models=tmp_path)
    with pytest.raises(ValueError, match="is not an image model"):
        latentlab.ImageEncoder("minilm-l6-v2", models=tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match="manifest"):
        latentlab.ImageEncoder(models=tmp_path)
