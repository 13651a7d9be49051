#!/usr/bin/env python3
"""Writes imagenet_class_prompts_minilm.npy: the MiniLM embeddings of "a photo of a {class}."
for the 1,000 ImageNet classes (imagenet_classes.txt), the matrix T of the image tower's bridge.

Run once, by hand, with onnxruntime and tokenizers installed (see
tests/fixtures/encoders/requirements.txt); the result is committed so that
build_models.py is deterministic and needs only numpy and onnx. Sentence embedding as
sentence-transformers defines it for all-MiniLM-L6-v2: the mean of the token states over
the attention mask, then L2 normalisation.
"""
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from build_models import HERE

# The text model as build_models.py writes it (run that first): T must live in the
# space of the very text model latentlab ships.
model = str(HERE / "minilm-l6-v2" / "model.onnx")
tokenizer = Tokenizer.from_file(str(HERE / "minilm-l6-v2" / "tokenizer.json"))
tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
tokenizer.enable_truncation(128)
session = ort.InferenceSession(model)

classes = (HERE / "imagenet_classes.txt").read_text().splitlines()
assert len(classes) == 1000
out = []
for start in range(0, len(classes), 100):
    batch = tokenizer.encode_batch([f"a photo of a {c}." for c in classes[start:start + 100]])
    ids = np.array([e.ids for e in batch], np.int64)
    mask = np.array([e.attention_mask for e in batch], np.int64)
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
np.save(HERE / "imagenet_class_prompts_minilm.npy", np.concatenate(out).astype(np.float32))
print("wrote imagenet_class_prompts_minilm.npy")
