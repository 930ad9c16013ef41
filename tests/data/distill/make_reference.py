"""Reference values for the distill sampler (tests/engine/tst_distill.cpp).

Computed here, in Python, straight from the definition of LightX2V's step-distill scheduler
(lightx2v/models/schedulers/wan/step_distill/scheduler.py, WanStepDistillScheduler), independently of
the engine's C++:
  sigmas    = torch.linspace(1, 0, 1001)[:-1]                   (float32)
  sigmas    = shift * sigmas / (1 + (shift - 1) * sigmas)       (float32)
  timesteps = sigmas * 1000                                     (float32)
  step k takes entry 1000 - denoising_step_list[k]
  update    x0 = x - sigma_k * v; before the last step x0 + v * sigma_{k+1}   (float32)
Run: python3 make_reference.py > reference.json (any torch 2.x; CPU).
"""
import json

import torch

CASES = [
    {"shift": 5.0, "list": [1000, 750, 500, 250]},  # the published 4-step models
    {"shift": 5.0, "list": [1000, 500]},
    {"shift": 3.0, "list": [999, 700, 420, 101, 1]},
    {"shift": 8.0, "list": [1000, 937, 875, 812, 750, 500]},
    {"shift": 1.0, "list": [1000, 750, 500, 250]},
]


def schedule(shift, step_list):
    s = torch.linspace(1.0, 0.0, 1001, dtype=torch.float32)[:-1]
    s = shift * s / (1 + (shift - 1) * s)
    t = s * 1000
    idx = [1000 - x for x in step_list]
    return t[idx], s[idx]


def main():
    gen = torch.Generator().manual_seed(20261201)
    out = []
    for case in CASES:
        t, s = schedule(case["shift"], case["list"])
        n = len(case["list"])
        x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float32)
        entry = {
            "shift": case["shift"],
            "denoising_step_list": case["list"],
            "timesteps": [float(v) for v in t.tolist()],
            "sigmas": [float(v) for v in s.tolist()],
            "x_init": x.flatten().tolist(),
            "shape": list(x.shape),
            "velocity": [],
            "x": [],
        }
        for k in range(n):
            v = torch.randn(x.shape, generator=gen, dtype=torch.float32)
            x0 = x - s[k].item() * v
            if k < n - 1:
                x0 = x0 + v * s[k + 1].item()
            x = x0
            entry["velocity"].append(v.flatten().tolist())
            entry["x"].append(x.flatten().tolist())
        out.append(entry)
    print(json.dumps({"generator": "tests/data/distill/make_reference.py", "torch": torch.__version__, "cases": out}))


if __name__ == "__main__":
    main()
