#!/usr/bin/env python3
"""Writes blocks.gguf: one small tensor of each GGML type the engine reads, each beside its float32
dequantization "<name>.expected", both computed by llama.cpp's own Python package (gguf-py: its
GGUFWriter for the container, gguf.quants.dequantize for the values) -- an implementation independent
of the engine's (engine/src/weights/ggml_blocks.cpp). The block bytes are random; the fp16 scale fields
are set to random finite values in [-2, 2] so that every value is finite.

Also: a tensor whose LibTorch shape has five dims, stored flattened with ComfyUI-GGUF's
`comfy.gguf.orig_shape.<name>` key (its expected values stored with five GGUF dims as gguf-py writes
them), and a custom alignment of 64 bytes.

Run once by hand (the file is committed): python3 -m venv v && v/bin/pip install numpy gguf==0.19.0
&& v/bin/python tests/data/gguf/make_reference.py tests/data/gguf/blocks.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

rng = np.random.default_rng(20261201)
ROWS, COLS = 3, 512

# Byte offsets of the fp16 fields in each block (ggml-common.h block structs).
FP16_FIELDS = {
    T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def random_blocks(qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    for off in FP16_FIELDS[qtype]:
        scales = rng.uniform(-2, 2, size=(rows, cols // block)).astype(np.float16)
        data[:, :, off:off + 2] = scales.view(np.uint8).reshape(rows, cols // block, 2)
    return data.reshape(rows, cols // block * size)


def main(out):
    w = gguf.GGUFWriter(out, arch="wan")
    w.add_custom_alignment(64)
    for qtype in FP16_FIELDS:
        raw = random_blocks(qtype, ROWS, COLS)
        name = f"{qtype.name}.weight"
        w.add_tensor(name, raw, raw_dtype=qtype)
        w.add_tensor(name + ".expected", gguf.quants.dequantize(raw, qtype).astype(np.float32))
    f32 = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    w.add_tensor("F32.weight", f32)
    w.add_tensor("F32.weight.expected", f32.copy())
    f16 = rng.standard_normal((ROWS, COLS)).astype(np.float16)
    w.add_tensor("F16.weight", f16)
    w.add_tensor("F16.weight.expected", f16.astype(np.float32))
    bf16 = (rng.standard_normal((ROWS, COLS)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("BF16.weight", bf16.view(np.uint8).reshape(ROWS, COLS * 2), raw_dtype=T.BF16)
    w.add_tensor("BF16.weight.expected", (bf16.astype(np.uint32) << 16).view(np.float32))
    # A 5-dim weight (Wan's patch_embedding is [dim, in_dim, 1, 2, 2]) stored flattened, ComfyUI-GGUF's way.
    shape5 = (16, 4, 1, 2, 2)
    raw = random_blocks(T.Q8_0, 1, 256)
    w.add_tensor("patch_embedding.weight", raw, raw_dtype=T.Q8_0)
    w.add_array("comfy.gguf.orig_shape.patch_embedding.weight", list(shape5))
    w.add_tensor("patch_embedding.weight.expected", gguf.quants.dequantize(raw, T.Q8_0).reshape(shape5))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
