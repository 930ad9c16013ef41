#!/usr/bin/env python3
"""Writes the fixture DiT (tests/data/golden/dit_t2v_small) as GGUF files of each type the engine reads,
the way ComfyUI-GGUF's tools/convert.py lays out Wan files: no "model.diffusion_model." prefix,
general.architecture "wan", 1-D tensors and tensors of at most 1024 values in F32, every other tensor in
the file's type; a tensor whose last dimension is not a multiple of the type's block (the 5-D patch
embedding, and for the K types every matrix of this small model) stored as rows of 256 values with its
shape in `comfy.gguf.orig_shape.<name>`.

Q8_0, Q5_0, Q4_0, F16 and BF16 are quantized by gguf-py (llama.cpp's package). gguf-py has no K-type
quantizer, so Q6_K, Q5_K, Q4_K, Q3_K and Q2_K are quantized here by round-to-nearest with absmax
sub-block scales (the block layouts of ggml-common.h); tst_gguf checks the engine reads back what
gguf-py's dequantizer reads from the same bytes (blocks.gguf) and that each file's DiT forward stays
close to the float32 one.

python3 -m venv v && v/bin/pip install numpy gguf==0.19.0 safetensors
v/bin/python tests/data/gguf/make_fixture_gguf.py tests/data/golden/dit_t2v_small tests/data/gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file


def f16_bytes(v):
    return np.asarray(v, dtype=np.float16).reshape(-1, 1).view(np.uint8)


def safe_div(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float32), where=b != 0)


def q6_k(x):  # x: (nb, 256) -> (nb, 210)
    nb = x.shape[0]
    sub = x.reshape(nb, 16, 16)
    s = np.abs(sub).max(axis=2) / 31.0
    d = s.max(axis=1) / 127.0
    sc = np.clip(np.rint(safe_div(s, d[:, None])), 0, 127).astype(np.int8)
    step = (d[:, None] * sc).astype(np.float32)
    q = (np.clip(np.rint(safe_div(sub, step[:, :, None])), -32, 31) + 32).astype(np.uint8).reshape(nb, 256)
    ql = np.zeros((nb, 128), np.uint8)
    qh = np.zeros((nb, 64), np.uint8)
    for h in range(2):
        v = q[:, 128 * h:128 * (h + 1)]
        q1, q2, q3, q4 = v[:, 0:32], v[:, 32:64], v[:, 64:96], v[:, 96:128]
        ql[:, 64 * h:64 * h + 32] = (q1 & 15) | ((q3 & 15) << 4)
        ql[:, 64 * h + 32:64 * h + 64] = (q2 & 15) | ((q4 & 15) << 4)
        qh[:, 32 * h:32 * h + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    return np.concatenate([ql, qh, sc.view(np.uint8), f16_bytes(d)], axis=1)


def k_scales_mins(x, levels):  # 8 sub-blocks of 32: 6-bit scales and mins
    nb = x.shape[0]
    sub = x.reshape(nb, 8, 32)
    mn = np.maximum(0, -sub.min(axis=2))
    scale = (sub.max(axis=2) + mn) / levels
    d = scale.max(axis=1) / 63.0
    dmin = mn.max(axis=1) / 63.0
    sc = np.clip(np.rint(safe_div(scale, d[:, None])), 0, 63).astype(np.uint8)
    m = np.clip(np.rint(safe_div(mn, dmin[:, None])), 0, 63).astype(np.uint8)
    step = (d[:, None] * sc).astype(np.float32)
    off = (dmin[:, None] * m).astype(np.float32)
    q = np.clip(np.rint(safe_div(sub + off[:, :, None], step[:, :, None])), 0, levels).astype(np.uint8)
    packed = np.zeros((nb, 12), np.uint8)
    for j in range(4):
        packed[:, j] = sc[:, j] | ((sc[:, j + 4] >> 4) << 6)
        packed[:, j + 4] = m[:, j] | ((m[:, j + 4] >> 4) << 6)
        packed[:, j + 8] = (sc[:, j + 4] & 15) | ((m[:, j + 4] & 15) << 4)
    return d, dmin, packed, q.reshape(nb, 256)


def q4_k(x):
    d, dmin, packed, q = k_scales_mins(x, 15)
    qs = np.concatenate([q[:, 64 * c:64 * c + 32] | (q[:, 64 * c + 32:64 * c + 64] << 4) for c in range(4)], axis=1)
    return np.concatenate([f16_bytes(d), f16_bytes(dmin), packed, qs], axis=1)


def q5_k(x):
    d, dmin, packed, q = k_scales_mins(x, 31)
    qs = np.concatenate([(q[:, 64 * c:64 * c + 32] & 15) | ((q[:, 64 * c + 32:64 * c + 64] & 15) << 4)
                         for c in range(4)], axis=1)
    qh = np.zeros((x.shape[0], 32), np.uint8)
    for c in range(4):
        qh |= (q[:, 64 * c:64 * c + 32] >> 4) << (2 * c)
        qh |= (q[:, 64 * c + 32:64 * c + 64] >> 4) << (2 * c + 1)
    return np.concatenate([f16_bytes(d), f16_bytes(dmin), packed, qh, qs], axis=1)


def q3_k(x):
    nb = x.shape[0]
    sub = x.reshape(nb, 16, 16)
    s = np.abs(sub).max(axis=2) / 4.0
    d = s.max(axis=1) / 31.0
    sc = np.clip(np.rint(safe_div(s, d[:, None])), 0, 31).astype(np.int64)
    step = (d[:, None] * sc).astype(np.float32)
    v = np.clip(np.rint(safe_div(sub, step[:, :, None])), -4, 3).astype(np.int64).reshape(nb, 256)
    low = np.where(v >= 0, v, v + 4).astype(np.uint8)
    high = (v >= 0).astype(np.uint8)
    S = (sc + 32).astype(np.uint8)
    packed = np.zeros((nb, 12), np.uint8)
    for i in range(8):
        packed[:, i] = (S[:, i] & 15) | ((S[:, i + 8] & 15) << 4)
    for j in range(4):
        for g in range(4):
            packed[:, 8 + j] |= ((S[:, j + 4 * g] >> 4) & 3) << (2 * g)
    qs = np.zeros((nb, 64), np.uint8)
    hm = np.zeros((nb, 32), np.uint8)
    for h in range(2):
        for j in range(4):
            for t in range(2):
                p = 128 * h + 32 * j + 16 * t
                qs[:, 32 * h + 16 * t:32 * h + 16 * t + 16] |= low[:, p:p + 16] << (2 * j)
                hm[:, 16 * t:16 * t + 16] |= high[:, p:p + 16] << (4 * h + j)
    return np.concatenate([hm, qs, packed, f16_bytes(d)], axis=1)


def q2_k(x):
    nb = x.shape[0]
    sub = x.reshape(nb, 16, 16)
    mn = np.maximum(0, -sub.min(axis=2))
    scale = (sub.max(axis=2) + mn) / 3.0
    d = scale.max(axis=1) / 15.0
    dmin = mn.max(axis=1) / 15.0
    sc = np.clip(np.rint(safe_div(scale, d[:, None])), 0, 15).astype(np.uint8)
    m = np.clip(np.rint(safe_div(mn, dmin[:, None])), 0, 15).astype(np.uint8)
    step = (d[:, None] * sc).astype(np.float32)
    off = (dmin[:, None] * m).astype(np.float32)
    q = np.clip(np.rint(safe_div(sub + off[:, :, None], step[:, :, None])), 0, 3).astype(np.uint8).reshape(nb, 256)
    qs = np.zeros((nb, 64), np.uint8)
    for h in range(2):
        for j in range(4):
            for t in range(2):
                p = 128 * h + 32 * j + 16 * t
                qs[:, 32 * h + 16 * t:32 * h + 16 * t + 16] |= q[:, p:p + 16] << (2 * j)
    return np.concatenate([sc | (m << 4), qs, f16_bytes(d), f16_bytes(dmin)], axis=1)


K_QUANTIZERS = {T.Q6_K: q6_k, T.Q5_K: q5_k, T.Q4_K: q4_k, T.Q3_K: q3_k, T.Q2_K: q2_k}


def quantize(data, qtype):
    if qtype in K_QUANTIZERS:
        blocks = K_QUANTIZERS[qtype](data.reshape(-1, 256).astype(np.float32))
        return blocks.reshape(data.shape[0], -1)
    return gguf.quants.quantize(data, qtype)


def write(weights, qtype, out):
    w = gguf.GGUFWriter(out, arch="wan")
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    for name, data in weights.items():
        data = data.astype(np.float32)
        t = qtype
        if data.ndim == 1 or data.size <= 1024:
            t = T.F32
        elif data.shape[-1] % block != 0 or data.ndim > 4:
            w.add_array(f"comfy.gguf.orig_shape.{name}", [int(d) for d in data.shape])
            data = data.reshape(-1, 256)
        w.add_tensor(name, quantize(data, t) if t != T.F32 else data, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(case_dir, out_dir):
    weights = load_file(f"{case_dir}/diffusion_pytorch_model.safetensors")
    for qtype in (T.Q8_0, T.Q6_K, T.Q5_K, T.Q5_0, T.Q4_K, T.Q4_0, T.Q3_K, T.Q2_K, T.F16, T.BF16):
        write(weights, qtype, f"{out_dir}/dit_t2v_small_{qtype.name}.gguf")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
