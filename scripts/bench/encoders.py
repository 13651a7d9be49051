#!/usr/bin/env python3
"""Encoder speed: latentlab (native CLI, tract) against onnxruntime (Python) on the same ONNX
files, measured in the same run. A benchmark, not a test: prints one JSON object.

    python3 -m venv /tmp/ortvenv && /tmp/ortvenv/bin/pip install onnxruntime numpy tokenizers pillow
    cargo build && /tmp/ortvenv/bin/python scripts/bench/encoders.py [--latentlab target/debug/latentlab]

latentlab's time per item is (time for all items − time for one item) / (items − 1), so model
loading and optimisation are excluded as they are for onnxruntime (whose session is built
before timing). Texts: the Tux Paint captions when installed (430), else the site's sentences
repeated; images: the 12 gallery photos. Best of three runs each.
"""
import argparse
import json
import os
import subprocess

import numpy as np
from timing import best_of
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "models")


def texts():
    stamps = "/usr/share/tuxpaint/stamps"
    found = []
    for base, _, files in os.walk(stamps):
        for f in sorted(files):
            if f.endswith(".txt") and not f.endswith("_es.txt"):
                with open(os.path.join(base, f), encoding="utf-8", errors="replace") as fh:
                    line = fh.readline().strip()
                if line:
                    found.append(line)
    if len(found) >= 100:
        return found[:430]
    with open(os.path.join(ROOT, "www", "public", "sentences.json")) as fh:
        return (json.load(fh)["sentences"] * 20)[:430]


def cli_per_item(cli, kind, items, extra=()):
    out = "/tmp/latentlab-bench.npy"
    run = lambda xs: subprocess.run([cli, "embed", kind, "--out", out, *extra, *xs], check=True, capture_output=True)
    one = best_of(3, lambda: run(items[:1]))[0]
    all_ = best_of(3, lambda: run(items))[0]
    return (all_ - one) / (len(items) - 1)


def ort_text(items, threads, model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(os.path.join(MODELS, model, "model.onnx"), opts)
    tok = Tokenizer.from_file(os.path.join(MODELS, "minilm-l6-v2", "tokenizer.json"))
    tok.enable_padding()
    tok.enable_truncation(128)

    def run():
        for at in range(0, len(items), 32):
            enc = tok.encode_batch(items[at:at + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(["last_hidden_state"], feeds)[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    return best_of(3, run)[0] / len(items)


def letterbox(path):
    img = Image.open(path).convert("RGBA")
    scale = 224 / max(img.size)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    img = img.resize((w, h), Image.BILINEAR)
    canvas = Image.new("RGBA", (224, 224), (255, 255, 255, 255))
    canvas.alpha_composite(img, ((224 - w) // 2, (224 - h) // 2))
    x = (np.asarray(canvas.convert("RGB"), dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)


def ort_image(paths, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(os.path.join(MODELS, "effl0-minilm-bridge", "model.onnx"), opts)

    def run():
        for at in range(0, len(paths), 4):
            batch = np.stack([letterbox(p) for p in paths[at:at + 4]])
            session.run(["image_embeds"], {"pixel_values": batch})

    return best_of(3, run)[0] / len(paths)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latentlab", default=os.path.join(ROOT, "target", "debug", "latentlab"))
    parser.add_argument("--text-model", default="minilm-l6-v2",
                        help="a text model of models/manifest.json (e.g. minilm-l6-v2-int8); its tokenizer is MiniLM's")
    parser.add_argument("--text-only", action="store_true", help="skip the image model")
    args = parser.parse_args()
    items = texts()
    gallery = os.path.join(ROOT, "www", "public", "gallery")
    paths = sorted(os.path.join(gallery, f) for f in os.listdir(gallery) if f.endswith((".png", ".jpg")))
    result = {
        "machine": f"{os.cpu_count()} cores, {os.uname().machine}",
        "onnxruntime": ort.__version__,
        "texts": len(items),
        "images": len(paths),
        "text_model": args.text_model,
        "text_ms_per_item": {
            "latentlab_native": 1e3 * cli_per_item(args.latentlab, "text", items, ["--model", args.text_model]),
            "onnxruntime_1_thread": 1e3 * ort_text(items, 1, args.text_model),
            "onnxruntime_all_threads": 1e3 * ort_text(items, 0, args.text_model),
        },
    }
    if not args.text_only:
        result["image_ms_per_item"] = {
            "latentlab_native": 1e3 * cli_per_item(args.latentlab, "image", paths),
            "onnxruntime_1_thread": 1e3 * ort_image(paths, 1),
            "onnxruntime_all_threads": 1e3 * ort_image(paths, 0),
        }
    for kind in ("text_ms_per_item", "image_ms_per_item")[:1 if args.text_only else 2]:
        r = result[kind]
        r["ratio_latentlab_over_onnxruntime_1_thread"] = r["latentlab_native"] / r["onnxruntime_1_thread"]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
