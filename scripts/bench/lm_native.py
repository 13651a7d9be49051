#!/usr/bin/env python3
"""latentlab's language model against llama.cpp on the same GGUF file, on the CPU.

A one-off comparison, not a test: it needs llama-cpp-python, which the project does not
install. Build it in the git-ignored venv (about 8 minutes of wall time on 2 cores):

    python3 -m venv .cache/llamacpp-venv
    .cache/llamacpp-venv/bin/pip install cmake ninja scikit-build-core
    CMAKE_ARGS="-DGGML_NATIVE=ON" .cache/llamacpp-venv/bin/pip install llama-cpp-python==0.3.36

On a processor with AMX (Intel Sapphire Rapids and later) that build's AMX kernels crashed
(segmentation fault in llama_decode on any batch of more than one token, 2026-12-04, in this
VM); build without them, everything else native:

    CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
      -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'" \
      .cache/llamacpp-venv/bin/pip install --force-reinstall --no-deps llama-cpp-python==0.3.36

Run it with that venv's python and a release build of the CLI, on a quiet machine
(`uptime` load under 0.5; the summary records the load before and after):

    cargo build --release
    .cache/llamacpp-venv/bin/python scripts/bench/lm_native.py --latentlab target/release/latentlab

Versions it was written against: llama-cpp-python 0.3.36 (vendored llama.cpp, GGML_NATIVE=ON,
OpenMP), latentlab 0.1.0, model models/smollm2-135m-instruct/model.gguf (SmolLM2-135M-Instruct
Q4_1). The summary prints the versions it actually ran.

What is measured, for each thread count in --threads (default 1,2), the same for both engines:
  - prompt processing: the fixed PROMPT below (about 120 tokens) through the model up to the
    choice of the first token (argmax of the last row), as prompt_tokens / seconds;
  - generation: --max-tokens greedy tokens (default 64); the speed is the tokens after the
    first over the time after the first, as the CLI reports it (each of those tokens is one
    single-token forward pass plus an argmax). Both stop early at the model's EOS token.
latentlab: `BIN lm generate --prompt P --max-tokens 64 --threads N --model FILE --activations A` prints one
  JSON line; prompt tokens/s = prompt_tokens / seconds_to_first_token, generation =
  tokens_per_second. Those are timed inside the CLI, so process start and model load are not
  counted (its timing does include its per-token log-probability and text decoding).
llama.cpp: llama_cpp.Llama(model_path=FILE, n_threads=N, n_threads_batch=N, n_ctx=512) loaded
  once per thread count; the prompt is tokenised by llama.cpp; timed with time.perf_counter
  around llm.reset(); llm.eval(prompt_tokens) + argmax (prompt), then around the remaining
  eval([token]) + argmax steps (generation). llama_perf_context's own timings (decode time
  only, no Python) are reported next to them as a cross-check, but the headline numbers are
  the perf_counter ones, which like latentlab's include the argmax and call overhead.
Order: per thread count one warm-up unit of each engine (not counted), then --rounds rounds of
  latentlab, llama.cpp, latentlab, llama.cpp, ... so that a change in machine load hits both.
Reported: per engine the best (highest tokens/s) and the range over the rounds, and
  latentlab/llama.cpp as a ratio of time per token at the best (above 1: latentlab is slower).
"""
import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    import llama_cpp
except ImportError:
    sys.exit("needs llama-cpp-python: run this with .cache/llamacpp-venv/bin/python (see the header)")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "models" / "smollm2-135m-instruct" / "model.gguf"

# About 120 tokens of plain English (the summary gives each engine's exact count).
PROMPT = (
    "The old lighthouse stood at the edge of the cliff for more than two hundred years, "
    "guiding fishing boats and merchant ships safely past the rocks that lay hidden beneath "
    "the waves. Every evening the keeper climbed the narrow spiral staircase, trimmed the "
    "wick, polished the great glass lens and lit the lamp before the sun went down. In "
    "winter the storms were so fierce that the whole tower seemed to shake, and salt spray "
    "reached the windows at the very top. Yet the light never failed, and the people of the "
    "village below came to believe that as long as it kept burning, no harm could come to "
    "those they loved at sea. One autumn night, however,"
)


def latentlab_unit(binary, model, prompt, max_tokens, threads, activations):
    cmd = [
        str(binary), "lm", "generate", "--prompt", prompt, "--max-tokens", str(max_tokens),
        "--threads", str(threads), "--model", str(model), "--activations", activations,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr[-2000:]}")
    line = [l for l in done.stdout.splitlines() if l.strip()][-1]
    out = json.loads(line)
    return {
        "prompt_tokens": out["prompt_tokens"],
        "prompt_tps": out["prompt_tokens"] / out["seconds_to_first_token"],
        "generated": len(out["tokens"]),
        "gen_tps": out["tokens_per_second"],
        "tokens": out["tokens"],
        "text": out["text"],
    }


class LlamaEngine:
    def __init__(self, model, threads):
        self.llm = llama_cpp.Llama(
            model_path=str(model), n_threads=threads, n_threads_batch=threads,
            n_ctx=512, verbose=False,
        )
        self.ctx = self.llm._ctx.ctx
        self.n_vocab = self.llm.n_vocab()
        self.eos = self.llm.token_eos()

    def tokenize(self, prompt):
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    def _argmax_last(self):
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        row = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))
        return int(row.argmax())

    def unit(self, prompt_ids, max_tokens):
        llm = self.llm
        llama_cpp.llama_perf_context_reset(self.ctx)
        t0 = time.perf_counter()
        llm.reset()
        llm.eval(prompt_ids)
        token = self._argmax_last()
        t1 = time.perf_counter()
        tokens = []
        while token != self.eos:
            tokens.append(token)
            if len(tokens) >= max_tokens:
                break
            llm.eval([token])
            token = self._argmax_last()
        t2 = time.perf_counter()
        perf = llama_cpp.llama_perf_context(self.ctx)
        decode = len(tokens) - 1
        return {
            "prompt_tokens": len(prompt_ids),
            "prompt_tps": len(prompt_ids) / (t1 - t0),
            "generated": len(tokens),
            "gen_tps": decode / (t2 - t1) if decode > 0 else 0.0,
            "perf_prompt_tps": perf.n_p_eval / (perf.t_p_eval_ms / 1e3) if perf.t_p_eval_ms > 0 else None,
            "perf_gen_tps": perf.n_eval / (perf.t_eval_ms / 1e3) if perf.t_eval_ms > 0 else None,
            "perf_counts": [perf.n_p_eval, perf.n_eval],
            "tokens": tokens,
            "text": llm.detokenize(tokens).decode("utf-8", errors="replace"),
        }


def spread(units, key):
    values = [u[key] for u in units if u.get(key) is not None]
    if not values:
        return None
    return {"best": max(values), "min": min(values), "max": max(values), "n": len(values)}


def common_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latentlab", required=True, type=Path, help="the latentlab CLI binary")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--activations", default="f32,int8",
                   help="latentlab's --activations modes to run, comma-separated (llama.cpp's own is int8)")
    args = p.parse_args()
    modes = args.activations.split(",")
    threads_list = [int(t) for t in args.threads.split(",")]
    model = args.model.resolve()

    version = subprocess.run([str(args.latentlab), "--version"], capture_output=True, text=True).stdout.strip()
    summary = {
        "model": str(model),
        "prompt_chars": len(PROMPT),
        "max_tokens": args.max_tokens,
        "rounds": args.rounds,
        "versions": {
            "latentlab": version,
            "latentlab_binary": str(args.latentlab.resolve()),
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "python": platform.python_version(),
        },
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "timing": {
            "latentlab": "inside the CLI: prompt_tokens/seconds_to_first_token, tokens_per_second",
            "llama_cpp": "time.perf_counter around llm.eval + argmax (headline); llama_perf_context as perf_*",
        },
        "threads": {},
    }

    for threads in threads_list:
        engine = LlamaEngine(model, threads)
        prompt_ids = engine.tokenize(PROMPT)
        print(f"threads={threads}: warm-up", file=sys.stderr, flush=True)
        for mode in modes:
            latentlab_unit(args.latentlab, model, PROMPT, args.max_tokens, threads, mode)
        engine.unit(prompt_ids, args.max_tokens)
        names = {mode: "latentlab" if mode == "f32" else f"latentlab_{mode}" for mode in modes}
        runs = {"llama_cpp": [], **{name: [] for name in names.values()}}
        for r in range(args.rounds):
            for mode, name in names.items():
                a = latentlab_unit(args.latentlab, model, PROMPT, args.max_tokens, threads, mode)
                runs[name].append(a)
            b = engine.unit(prompt_ids, args.max_tokens)
            runs["llama_cpp"].append(b)
            for mode, name in names.items():
                a = runs[name][-1]
                print(
                    f"threads={threads} round {r + 1}/{args.rounds}: "
                    f"prompt {a['prompt_tps']:.1f} vs {b['prompt_tps']:.1f} tok/s, "
                    f"gen {a['gen_tps']:.1f} vs {b['gen_tps']:.1f} tok/s "
                    f"(latentlab --activations {mode} vs llama.cpp)",
                    file=sys.stderr, flush=True,
                )
        lc = runs["llama_cpp"][-1]
        entry = {
            name: {
                "activations": mode,
                "prompt_tokens": runs[name][-1]["prompt_tokens"],
                "generated": runs[name][-1]["generated"],
                "prompt_tps": spread(runs[name], "prompt_tps"),
                "gen_tps": spread(runs[name], "gen_tps"),
                "greedy_tokens_agree": common_prefix(runs[name][-1]["tokens"], lc["tokens"]),
                "text": runs[name][-1]["text"],
            }
            for mode, name in names.items()
        }
        entry.update({
            "llama_cpp": {
                "prompt_tokens": lc["prompt_tokens"], "generated": lc["generated"],
                "prompt_tps": spread(runs["llama_cpp"], "prompt_tps"),
                "gen_tps": spread(runs["llama_cpp"], "gen_tps"),
                "perf_prompt_tps": spread(runs["llama_cpp"], "perf_prompt_tps"),
                "perf_gen_tps": spread(runs["llama_cpp"], "perf_gen_tps"),
                "perf_counts_last": lc["perf_counts"],
                "text": lc["text"],
            },
        })
        # Time per token, latentlab over llama.cpp, at each engine's best: above 1 means slower.
        for name in names.values():
            for kind in ("prompt_tps", "gen_tps"):
                best_a = entry[name][kind]["best"]
                best_b = entry["llama_cpp"][kind]["best"]
                entry[name][f"ratio_time_per_token_{kind.split('_')[0]}"] = best_b / best_a if best_a else None
        summary["threads"][str(threads)] = entry
        del engine

    load = os.getloadavg()
    summary["machine"]["load_after"] = load
    # The load after includes this benchmark's own threads, so only the load before says quiet.
    summary["machine"]["quiet"] = summary["machine"]["load_before"][0] < 0.5
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
