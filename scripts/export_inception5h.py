#!/usr/bin/python3
"""Converts the lucent project's InceptionV1 weights (inception5h.pth, a PyTorch state dict with keys
such as conv2d0_pre_relu_conv.weight and mixed4c_3x3_pre_relu_conv.bias) into cnnvis's
models/inception5h.safetensors + models/inception5h.json.

  /usr/bin/python3 scripts/export_inception5h.py --pth inception5h.pth [--out models]

Download inception5h.pth once from the URL in lucent's lucent/modelzoo/inceptionv1/InceptionV1.py
(cnnvis itself never downloads). Every expected key must be present with the expected shape, and no
other key may be; the file is checked before anything is written. The card says how the network is fed:
RGB scaled to 0..255 minus 117 (input_range 255, mean 117, std 1), 224x224, 1008 classes.
"""

import argparse
import importlib.util
import os
import sys
from collections import OrderedDict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (block, input channels, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool reduce)
MIXED = [
    ("mixed3a", 192, 64, 96, 128, 16, 32, 32),
    ("mixed3b", 256, 128, 128, 192, 32, 96, 64),
    ("mixed4a", 480, 192, 96, 204, 16, 48, 64),
    ("mixed4b", 508, 160, 112, 224, 24, 64, 64),
    ("mixed4c", 512, 128, 128, 256, 24, 64, 64),
    ("mixed4d", 512, 112, 144, 288, 32, 64, 64),
    ("mixed4e", 528, 256, 160, 320, 32, 128, 128),
    ("mixed5a", 832, 256, 160, 320, 48, 128, 128),
    ("mixed5b", 832, 384, 192, 384, 48, 128, 128),
]
NUM_CLASSES = 1008


def expected_shapes():
    """Every parameter of the network with its shape, in execution order."""
    shapes = OrderedDict()

    def conv(name, cin, cout, k):
        shapes[f"{name}_pre_relu_conv.weight"] = (cout, cin, k, k)
        shapes[f"{name}_pre_relu_conv.bias"] = (cout,)

    conv("conv2d0", 3, 64, 7)
    conv("conv2d1", 64, 64, 1)
    conv("conv2d2", 64, 192, 3)
    for name, cin, c1, c3r, c3, c5r, c5, cp in MIXED:
        conv(f"{name}_1x1", cin, c1, 1)
        conv(f"{name}_3x3_bottleneck", cin, c3r, 1)
        conv(f"{name}_3x3", c3r, c3, 3)
        conv(f"{name}_5x5_bottleneck", cin, c5r, 1)
        conv(f"{name}_5x5", c5r, c5, 5)
        conv(f"{name}_pool_reduce", cin, cp, 1)
    shapes["softmax2_pre_activation_matmul.weight"] = (NUM_CLASSES, 1024)
    shapes["softmax2_pre_activation_matmul.bias"] = (NUM_CLASSES,)
    return shapes


def load_exporter():
    path = os.path.join(REPO_ROOT, "scripts", "export_weights.py")
    spec = importlib.util.spec_from_file_location("cnnvis_export_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_state_dict(state):
    """Raises ValueError naming every missing, unexpected or misshapen key."""
    expected = expected_shapes()
    problems = []
    for key, shape in expected.items():
        if key not in state:
            problems.append(f"missing {key}")
        elif tuple(state[key].shape) != shape:
            problems.append(f"{key} has shape {tuple(state[key].shape)}, expected {shape}")
    problems += [f"unexpected {key}" for key in state if key not in expected]
    if problems:
        raise ValueError("; ".join(problems[:8]) + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))


def make_card(source, weights_sha256):
    return OrderedDict([
        ("name", "inception5h"),
        ("architecture", "inception5h"),
        ("input_size", [224, 224]),
        ("channel_order", "RGB"),
        ("input_range", 255.0),
        ("mean", [117.0, 117.0, 117.0]),
        ("std", [1.0, 1.0, 1.0]),
        ("transform_input", False),
        ("labels", []),
        ("default_layer", "mixed4c"),
        ("weights_file", "inception5h.safetensors"),
        ("weights_sha256", weights_sha256),
        ("ignore_weight_prefixes", []),
        ("source", source),
    ])


def export_state_dict(state, out_dir, source):
    """Checks and writes <out_dir>/inception5h.safetensors and .json; returns the two paths."""
    check_state_dict(state)
    exporter = load_exporter()
    ordered = OrderedDict((key, state[key]) for key in expected_shapes())
    weights = os.path.join(out_dir, "inception5h.safetensors")
    card_path = os.path.join(out_dir, "inception5h.json")
    exporter.write_safetensors(weights, ordered, {"format": "pt", "source": source, "architecture": "inception5h"})
    exporter.write_card(make_card(source, exporter.sha256_file(weights)), card_path)
    return weights, card_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pth", required=True, help="lucent's inception5h.pth (a state dict)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "models"), help="output directory")
    args = parser.parse_args()
    import torch

    try:
        state = torch.load(args.pth, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - one line naming the file is the contract
        raise SystemExit(f"error: {args.pth}: cannot read ({error})")
    if not isinstance(state, dict):
        raise SystemExit(f"error: {args.pth}: not a state dict")
    try:
        weights, card = export_state_dict(state, args.out, f"lucent inception5h.pth ({os.path.basename(args.pth)})")
    except ValueError as error:
        raise SystemExit(f"error: {args.pth}: {error}")
    print(f"wrote {weights} and {card}")


if __name__ == "__main__":
    sys.exit(main())
