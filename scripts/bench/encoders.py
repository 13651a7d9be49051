#!/usr/bin/env python3
"""Encoder speed: latentlab (native CLI, tract) against onnxruntime (Python) on the same ONNX
files, the two engines taking turns unit by unit in one run. A benchmark, not a test: prints
each round as it goes (stderr) and one JSON object at the end (stdout).

    python3 -m venv /tmp/ortvenv && /tmp/ortvenv/bin/pip install onnxruntime==1.32.0 numpy tokenizers pillow
    cargo build --release --bin latentlab
    /tmp/ortvenv/bin/python scripts/bench/encoders.py --latentlab target/release/latentlab [--threads 1,2] [--rounds 5]

`--hide-avx512` measures both engines as on an AVX2-only processor: AVX-512 hidden from CPUID
for this script, onnxruntime and the CLI (scripts/bench/hide_avx512.c, LD_PRELOAD; checked: with
it onnxruntime's hottest loop is its ymm FMA kernel, without it a zmm one).

What a unit is: the whole caption set (texts: the Tux Paint captions when installed, 430, else
the site's sentences repeated; taken --text-repeat times over, 3 by default: at two threads 430
captions are ~0.5 s, near the CLI-start noise the one-item run subtracts; batches of at most 32, tokenising and mean pooling inside the
timing on both sides; by default both sides get the same batches, texts of one length in
tokens each, longest first, as latentlab's `embed_batched` makes them, so that neither runs its
model on padding — `--ort-text-order length` gives onnxruntime sentence-transformers' batches
instead (sorted by length, cut every 32: padded to each batch's longest), `given` the texts in
their given order, as a naive loop would) or the whole photo set (images: the 12 gallery photos, taken
--image-repeat times over, 5 by default: with 12 alone a unit's signal, ~0.3 s, was no larger
than the noise in the CLI's start and model loading that the one-item run subtracts; decoding,
letterbox and normalisation inside the timing on both sides; onnxruntime gets batches of
--image-batch pictures, latentlab whatever its encoder does with the CLI's files).

How latentlab is timed: a unit is two CLI runs, all items and the first item alone, and its
time per item is (all − one) / (items − 1), so process start, model loading and optimisation
are excluded as they are for onnxruntime (whose session is built before timing). `--threads N`
is passed to the CLI (a CLI without that option is measured at 1 thread only).

Why turns: this VM's speed drifts by up to 2× over seconds to minutes (BENCHMARKS.md,
"Encoders in the browser"), so an engine that ran all its repeats before the other could get
the slow stretch alone. Here, after one warm-up unit of each engine per kind and thread count
(not counted), every round runs, for each kind and thread count, one latentlab unit and one
onnxruntime unit back to back, the order alternating from round to round; the ratio of a
round is latentlab / onnxruntime within that round. Reported: every round's values, and per
engine and ratio the range (min–max) and median over the rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Latentlab:
    """One unit: the CLI on all items, then on the first alone; seconds per item."""

    def __init__(self, cli, models, text_model):
        self.cli, self.models, self.text_model = cli, models, text_model
        help_text = subprocess.run([cli, "embed", "text", "--help"], capture_output=True, text=True).stdout
        self.has_threads = "--threads" in help_text

    def unit(self, kind, items, threads):
        extra = ["--models", self.models] if self.models else []
        if kind == "text":
            extra += ["--model", self.text_model]
        if self.has_threads:
            extra += ["--threads", str(threads)]
        out = "/tmp/latentlab-bench.npy"
        run = lambda xs: subprocess.run([self.cli, "embed", kind, "--out", out, *extra, *xs], check=True,
                                        capture_output=True)
        all_ = timed(lambda: run(items))
        one = timed(lambda: run(items[:1]))
        return (all_ - one) / (len(items) - 1)


class OnnxRuntime:
    """Sessions built once per thread count (outside the timing); one unit: seconds per item."""

    def __init__(self, models, text_model, image_model, image_batch, text_order="length"):
        self.models, self.text_model, self.image_model = models, text_model, image_model
        self.image_batch, self.text_order = image_batch, text_order
        self.sessions = {}
        self.tok = Tokenizer.from_file(os.path.join(models, "minilm-l6-v2", "tokenizer.json"))
        self.tok.enable_padding()
        self.tok.enable_truncation(128)

    def session(self, kind, threads):
        if (kind, threads) not in self.sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            name = self.text_model if kind == "text" else self.image_model
            self.sessions[kind, threads] = ort.InferenceSession(
                os.path.join(self.models, name, "model.onnx"), opts, providers=["CPUExecutionProvider"])
        return self.sessions[kind, threads]

    def unit(self, kind, items, threads):
        session = self.session(kind, threads)
        if kind == "text":
            return timed(lambda: self.texts(session, items)) / len(items)
        return timed(lambda: self.images(session, items)) / len(items)

    def texts(self, session, items):
        for batch in text_batches(self.tok, items, self.text_order):
            enc = self.tok.encode_batch(batch)
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(["last_hidden_state"], feeds)[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def images(self, session, paths):
        for at in range(0, len(paths), self.image_batch):
            batch = np.stack([letterbox(p) for p in paths[at:at + self.image_batch]])
            session.run(["image_embeds"], {"pixel_values": batch})


def text_batches(tok, items, order, size=32):
    """Batches of at most `size` texts. "equal": texts of one length in tokens per batch,
    longest first, as latentlab's `embed_batched` makes them (nothing padded); "length": sorted
    by length, longest first, then cut every `size`, as sentence-transformers' `encode` does;
    "given": cut every `size` in the given order."""
    if order == "given":
        return [items[at:at + size] for at in range(0, len(items), size)]
    lengths = [sum(e.attention_mask) for e in tok.encode_batch(items)]
    by_length = sorted(zip(lengths, items), key=lambda p: -p[0])  # stable, as Rust's sort
    if order == "length":
        items = [t for _, t in by_length]
        return [items[at:at + size] for at in range(0, len(items), size)]
    batches = []
    for length, text in by_length:
        if batches and batches[-1][0] == length and len(batches[-1][1]) < size:
            batches[-1][1].append(text)
        else:
            batches.append((length, [text]))
    return [b for _, b in batches]


def hide_avx512_and_rerun():
    """Re-runs this script with AVX-512 hidden from CPUID (scripts/bench/hide_avx512.c, built
    here with gcc), so that both engines take their AVX2 code paths: an AVX2-only processor's
    kernels, measured on this one."""
    shim = "/tmp/latentlab-hide-avx512.so"
    source = os.path.join(ROOT, "scripts", "bench", "hide_avx512.c")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", shim, source], check=True)
    env = dict(os.environ, LD_PRELOAD=shim, LATENTLAB_BENCH_AVX512_HIDDEN="1")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def letterbox(path):
    img = Image.open(path).convert("RGBA")
    scale = 224 / max(img.size)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    img = img.resize((w, h), Image.BILINEAR)
    canvas = Image.new("RGBA", (224, 224), (255, 255, 255, 255))
    canvas.alpha_composite(img, ((224 - w) // 2, (224 - h) // 2))
    x = (np.asarray(canvas.convert("RGB"), dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)


def summary(values):
    return {"min": min(values), "max": max(values), "median": statistics.median(values)}


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latentlab", default=os.path.join(ROOT, "target", "release", "latentlab"))
    parser.add_argument("--models", default=None,
                        help="the models folder (default: the CLI's own default; onnxruntime reads ROOT/models)")
    parser.add_argument("--text-model", default="minilm-l6-v2",
                        help="a text model of models/manifest.json (e.g. minilm-l6-v2-int8); its tokenizer is MiniLM's")
    parser.add_argument("--image-model", default="effl0-minilm-bridge")
    parser.add_argument("--text-only", action="store_true", help="skip the image model")
    parser.add_argument("--image-only", action="store_true", help="skip the text model")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated (both engines)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image-batch", type=int, default=4, help="onnxruntime's pictures per run")
    parser.add_argument("--image-repeat", type=int, default=5,
                        help="the gallery's 12 photos this many times over make an image unit")
    parser.add_argument("--text-repeat", type=int, default=3,
                        help="the 430 captions this many times over make a text unit (with 430 a "
                             "two-thread unit is ~0.5 s, near the noise of the CLI start it subtracts)")
    parser.add_argument("--ort-text-order", choices=["equal", "length", "given"], default="equal",
                        help="onnxruntime's batches of 32: texts of one length each, as latentlab's "
                             "(equal, the engines compared on the same batches); sorted by length then "
                             "cut, as sentence-transformers' (length); or in the given order")
    parser.add_argument("--hide-avx512", action="store_true",
                        help="hide AVX-512 from both engines (needs gcc and a processor with cpuid_fault)")
    args = parser.parse_args()
    if args.hide_avx512 and not os.environ.get("LATENTLAB_BENCH_AVX512_HIDDEN"):
        hide_avx512_and_rerun()
    models = args.models or os.path.join(ROOT, "models")
    threads = [int(t) for t in args.threads.split(",")]
    items = texts() * args.text_repeat
    gallery = os.path.join(ROOT, "www", "public", "gallery")
    paths = sorted(os.path.join(gallery, f) for f in os.listdir(gallery) if f.endswith((".png", ".jpg")))
    paths = paths * args.image_repeat
    kinds = [k for k, skip in (("text", args.image_only), ("image", args.text_only)) if not skip]
    units = {"text": items, "image": paths}

    ll = Latentlab(args.latentlab, args.models, args.text_model)
    rt = OnnxRuntime(models, args.text_model, args.image_model, args.image_batch, args.ort_text_order)
    engines = {"latentlab": ll.unit, "onnxruntime": rt.unit}
    cases = [(k, t) for k in kinds for t in threads if t == 1 or ll.has_threads]
    load_before = loadavg()
    for kind, t in cases:  # warm-up: every unit once, not counted
        for unit in engines.values():
            unit(kind, units[kind], t)
    rounds = {f"{k}_{t}_threads": {"latentlab": [], "onnxruntime": [], "ratio": []} for k, t in cases}
    for r in range(args.rounds):
        order = list(engines) if r % 2 == 0 else list(reversed(engines))
        for kind, t in cases:
            got = {name: 1e3 * engines[name](kind, units[kind], t) for name in order}
            row = rounds[f"{kind}_{t}_threads"]
            for name in engines:
                row[name].append(got[name])
            row["ratio"].append(got["latentlab"] / got["onnxruntime"])
            print(f"round {r + 1} {kind} {t} thread(s): latentlab {got['latentlab']:.2f} ms, "
                  f"onnxruntime {got['onnxruntime']:.2f} ms, ratio {row['ratio'][-1]:.2f}", file=sys.stderr)
    result = {
        "machine": f"{os.cpu_count()} cores, {os.uname().machine}",
        "onnxruntime": ort.__version__,
        "latentlab": args.latentlab,
        "latentlab_has_threads_option": ll.has_threads,
        "texts": len(items),
        "images": len(paths),
        "text_model": args.text_model,
        "image_model": args.image_model,
        "onnxruntime_image_batch": args.image_batch,
        "onnxruntime_text_order": args.ort_text_order,
        "avx512_hidden": bool(os.environ.get("LATENTLAB_BENCH_AVX512_HIDDEN")),
        "rounds": args.rounds,
        "loadavg_before_after": [load_before, loadavg()],
        "ms_per_item": {name: {engine: {"rounds": [round(v, 3) for v in vals], **summary(vals)}
                               for engine, vals in row.items()}
                        for name, row in rounds.items()},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
