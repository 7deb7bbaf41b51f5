#!/usr/bin/python3
"""Reference activations of the Lucid InceptionV1 ("inception5h") for the C++ parity test.

A small PyTorch implementation of the network as lucent lays it out (flat parameter names such as
mixed4c_3x3_pre_relu_conv.weight, TF SAME padding written as explicit pads, LRN after conv2d0's pool and
after conv2d2, 7x7 average pool, 1008 logits) gets seeded random weights (He-normal, so activations keep
their scale through the depth, biases small), which scripts/export_inception5h.py checks and writes as
DIR/inception5h.safetensors + .json. Two seeded images in [0, 1] are fed as x * 255 - 117 and the outputs
of Lucid's named layers are written:

  DIR/inception5h_input<i>.npy            float32 1x3x224x224 in [0, 1]
  DIR/inception5h_input<i>/<layer>.npy    conv2d0, conv2d1, conv2d2, mixed3a .. mixed5b, mixed4c_3x3, logits

Run with Debian's python3 (python3-torch, python3-numpy).
"""

import argparse
import importlib.util
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 0
NUM_INPUTS = 2


def load_script(name):
    path = os.path.join(REPO_ROOT, "scripts", name)
    spec = importlib.util.spec_from_file_location(name.replace(".py", ""), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_state(exporter, seed):
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in exporter.expected_shapes().items():
        if key.endswith(".weight"):
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.01
    return state


def forward(state, x, record):
    def conv(name, t, padding=0):
        return F.relu(F.conv2d(t, state[f"{name}_pre_relu_conv.weight"], state[f"{name}_pre_relu_conv.bias"],
                               padding=padding))

    def same_pool(t):  # TF SAME 3x3/2 max pool on an even side: one -inf row/column at the end
        return F.max_pool2d(F.pad(t, (0, 1, 0, 1), value=float("-inf")), 3, 2)

    def lrn(t):
        return F.local_response_norm(t, size=9, alpha=9.99999974738e-05, beta=0.5, k=1)

    t = F.pad(x, (2, 3, 2, 3))
    t = F.relu(F.conv2d(t, state["conv2d0_pre_relu_conv.weight"], state["conv2d0_pre_relu_conv.bias"], stride=2))
    record("conv2d0", t)
    t = lrn(same_pool(t))
    t = conv("conv2d1", t)
    record("conv2d1", t)
    t = conv("conv2d2", t, 1)
    record("conv2d2", t)
    t = same_pool(lrn(t))
    for block in ["mixed3a", "mixed3b", "maxpool4", "mixed4a", "mixed4b", "mixed4c", "mixed4d", "mixed4e",
                  "maxpool10", "mixed5a", "mixed5b"]:
        if block.startswith("maxpool"):
            t = same_pool(t)
            continue
        b1 = conv(f"{block}_1x1", t)
        b2 = conv(f"{block}_3x3", conv(f"{block}_3x3_bottleneck", t), 1)
        if block == "mixed4c":
            record("mixed4c_3x3", b2)
        b3 = conv(f"{block}_5x5", conv(f"{block}_5x5_bottleneck", t), 2)
        b4 = conv(f"{block}_pool_reduce", F.max_pool2d(F.pad(t, (1, 1, 1, 1), value=float("-inf")), 3, 1))
        t = torch.cat([b1, b2, b3, b4], 1)
        record(block, t)
    t = F.avg_pool2d(t, 7, 1).reshape(-1, 1024)
    logits = F.linear(t, state["softmax2_pre_activation_matmul.weight"], state["softmax2_pre_activation_matmul.bias"])
    record("logits", logits)
    return logits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    torch.set_num_threads(1)
    exporter = load_script("export_inception5h.py")
    state = random_state(exporter, SEED)
    exporter.export_state_dict(state, args.dir, f"seeded random weights (seed {SEED}) for the parity test")
    generator = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for i in range(NUM_INPUTS):
            image = torch.rand((1, 3, 224, 224), generator=generator)
            np.save(os.path.join(args.dir, f"inception5h_input{i}.npy"), image.numpy())
            out_dir = os.path.join(args.dir, f"inception5h_input{i}")
            os.makedirs(out_dir, exist_ok=True)
            forward(state, image * 255.0 - 117.0,
                    lambda name, t: np.save(os.path.join(out_dir, f"{name}.npy"), t.contiguous().numpy()))
    print(f"inception5h reference in {args.dir}")


if __name__ == "__main__":
    sys.exit(main())
