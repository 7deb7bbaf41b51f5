#!/usr/bin/python3
"""Reference activations for the C++ parity test, computed with torchvision.

For vgg16 and googlenet: exports seeded random weights (seed 0) with scripts/export_weights.py into
DIR/<name>.safetensors + DIR/<name>.json, makes two deterministic input images and writes every named
module's output for each of them:

  DIR/<name>_input<i>.npy                  float32 1x3x224x224, values in [0, 1] (before normalisation)
  DIR/<name>_input<i>/<module name>.npy    float32, C order, one per named module (containers included)
  DIR/<name>_input<i>/logits.npy           the model output
  DIR/googlenet_input<i>/transform_input.npy   GoogLeNet's re-normalised input (transform_input=True)
  DIR/<name>_layers.json                   {"model", "architecture", "inputs", "layers": [{"name",
                                           "type", "shape"}, ...]} in execution order (the order in which
                                           the modules' outputs are produced, so a container follows its
                                           children), shapes of input 0

GoogLeNet is built with transform_input=True (and the card says so) to exercise that path. Its
random initialisation (std 0.01, BatchNorm at identity statistics) makes activations shrink to ~1e-12
in the deep blocks and leaves BatchNorm untested, so before export its BatchNorm running statistics are
calibrated on seeded random inputs and its affine parameters are randomised: activations then keep a
sane scale and a C++ bug in BatchNorm (e.g. swapped mean/var) shows up.

Run with Debian's python3 (python3-torch, python3-torchvision, python3-numpy). Takes well under a minute.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_INPUTS = 2
SEED = 0


def load_exporter():
    path = os.path.join(REPO_ROOT, "scripts", "export_weights.py")
    spec = importlib.util.spec_from_file_location("cnnvis_export_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calibrate_batchnorm(model, mean, std, seed):
    """Sets BatchNorm running statistics from a seeded random batch, then randomises the affine
    parameters. Deterministic for a given seed."""
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not batchnorms:
        return False
    generator = torch.Generator().manual_seed(seed)
    # Affine parameters first: the statistics of each layer are then measured on what the layers above
    # really produce, so scales do not compound through the network in eval mode.
    with torch.no_grad():
        for bn in batchnorms:
            bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=generator))
            bn.bias.copy_(0.1 * torch.randn(bn.bias.shape, generator=generator))
    batch = torch.rand(4, 3, 224, 224, generator=generator)
    batch = (batch - mean) / std
    momenta = []
    for bn in batchnorms:
        momenta.append(bn.momentum)
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch the statistics are that batch's
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    for bn, momentum in zip(batchnorms, momenta):
        bn.momentum = momentum
    return True


def check_round_trip(exporter, weights_path, model, arch):
    """The written safetensors file holds exactly the exported state_dict."""
    arrays, metadata = exporter.read_safetensors(weights_path)
    state = exporter.export_state_dict(model, arch)
    if list(arrays) != list(state):
        raise SystemExit(f"{weights_path}: tensor names/order differ from the state_dict")
    for name, tensor in state.items():
        if not np.array_equal(arrays[name], tensor.detach().cpu().numpy()):
            raise SystemExit(f"{weights_path}: tensor {name} differs from the state_dict")
    if metadata.get("format") != "pt":
        raise SystemExit(f"{weights_path}: metadata lacks format=pt")


def run_reference(exporter, arch, out_dir):
    started = time.time()
    transform_input = True if arch == "googlenet" else None
    model, transform_input, source = exporter.build_model(arch, pretrained=False, seed=SEED,
                                                         transform_input=transform_input)
    card_mean = torch.tensor(exporter.MEAN).view(1, 3, 1, 1)
    card_std = torch.tensor(exporter.STD).view(1, 3, 1, 1)
    if calibrate_batchnorm(model, card_mean, card_std, seed=1000 + SEED):
        source += "; BatchNorm statistics calibrated on seeded random inputs and affine parameters " \
                  "randomised by tests/parity/make_reference.py"
    model.eval()

    # In-place ReLUs would overwrite the recorded output of the layer before them.
    for module in model.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False

    weights_path, card_path, card = exporter.export_model(model, arch, transform_input, source, out_dir)
    check_round_trip(exporter, weights_path, model, arch)
    assert card["transform_input"] == (arch == "googlenet")
    mean = torch.tensor(card["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(card["std"]).view(1, 3, 1, 1)

    # Hooks on every named module but the root. Outputs are cloned at once: BasicConv2d applies an
    # in-place F.relu to its BatchNorm's output after the hook has seen it.
    records = []
    names = {module: name for name, module in model.named_modules() if name}

    def hook(module, inputs, output):
        name = names[module]
        if not torch.is_tensor(output):
            raise SystemExit(f"{arch}: module {name} returned {type(output).__name__}, not a tensor")
        if any(record[0] == name for record in records):
            raise SystemExit(f"{arch}: module {name} ran twice; its output would be ambiguous")
        records.append((name, type(module).__name__, output.detach().clone()))

    handles = [module.register_forward_hook(hook) for module in names]

    layers = None
    for index in range(NUM_INPUTS):
        generator = torch.Generator().manual_seed(100 + index)
        image = torch.rand(1, 3, 224, 224, generator=generator)  # [0, 1], like a decoded image
        np.save(os.path.join(out_dir, f"{arch}_input{index}.npy"), image.numpy().astype(np.float32))
        records.clear()
        with torch.no_grad():
            x = (image - mean) / std
            logits = model(x)
            transformed = model._transform_input(x) if arch == "googlenet" else None
        input_dir = os.path.join(out_dir, f"{arch}_input{index}")
        os.makedirs(input_dir, exist_ok=True)
        for name, _, output in records:
            np.save(os.path.join(input_dir, f"{name}.npy"), np.ascontiguousarray(output.numpy(), dtype=np.float32))
        np.save(os.path.join(input_dir, "logits.npy"), np.ascontiguousarray(logits.numpy(), dtype=np.float32))
        if transformed is not None:
            np.save(os.path.join(input_dir, "transform_input.npy"),
                    np.ascontiguousarray(transformed.numpy(), dtype=np.float32))
        if layers is None:
            layers = [{"name": name, "type": kind, "shape": list(output.shape)} for name, kind, output in records]

    for handle in handles:
        handle.remove()
    # One layer per line: readable and diff-friendly.
    with open(os.path.join(out_dir, f"{arch}_layers.json"), "w", encoding="utf-8") as out:
        out.write(f'{{"model": {json.dumps(arch)}, "architecture": {json.dumps(arch)}, "inputs": {NUM_INPUTS}, '
                  f'"layers": [\n')
        out.write(",\n".join("  " + json.dumps(layer) for layer in layers))
        out.write("\n]}\n")
    print(f"{arch}: {len(layers)} modules x {NUM_INPUTS} inputs, logits std {float(logits.std()):.4g}, "
          f"weights {weights_path}, {time.time() - started:.1f}s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--model", action="append", choices=["vgg16", "googlenet"],
                        help="only these models (default: both)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.set_grad_enabled(False)
    exporter = load_exporter()
    for arch in args.model or ["vgg16", "googlenet"]:
        run_reference(exporter, arch, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
