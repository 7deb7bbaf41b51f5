#!/usr/bin/python3
"""Reference input gradients for the C++ gradient parity test, computed with torchvision.

Loads the seeded random VGG16 that tests/parity/make_reference.py exported (DIR/vgg16.safetensors,
DIR/vgg16.json, DIR/vgg16_input<i>.npy) and, for each input, the gradient of the top class's raw logit
with respect to the normalised input with:

  vanilla   standard ReLUs
  guided    every nn.ReLU replaced by an autograd Function passing grad where input > 0 AND grad > 0
  deconv    every nn.ReLU replaced by an autograd Function passing grad where grad > 0

and writes

  DIR/vgg16_input<i>_gradients/{vanilla,guided,deconv}.npy   float32 224x224x3 (H, W, RGB)
  DIR/vgg16_input<i>_gradients/saliency.npy                  float32 224x224: max over channels |vanilla|
  DIR/vgg16_gradients.json                                   {"inputs": N, "targets": [class per input]}

Max pooling is torch's own: its backward routes through the argmax in every mode.
Run with Debian's python3 (python3-torch, python3-torchvision, python3-numpy).
"""

import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ("vanilla", "guided", "deconv")


def load_exporter():
    path = os.path.join(REPO_ROOT, "scripts", "export_weights.py")
    spec = importlib.util.spec_from_file_location("cnnvis_export_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GuidedReluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0).to(grad.dtype)


class DeconvReluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


class ModeRelu(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function.apply(x)


def replace_relus(module, function):
    """Swaps every nn.ReLU below module for the given autograd Function (in place, recursively)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, ModeRelu(function))
        else:
            replace_relus(child, function)


def build_vgg16(exporter, weights_path, function=None):
    arrays, _ = exporter.read_safetensors(weights_path)
    model = torchvision.models.vgg16(weights=None)
    model.load_state_dict({name: torch.from_numpy(np.array(array)) for name, array in arrays.items()})
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    if function is not None:
        replace_relus(model, function)
        assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    return model


def input_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    logits[0, target].backward()
    return logits.detach(), x.grad.detach()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the parity directory make_reference.py wrote")
    parser.add_argument("--inputs", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.time()
    weights = os.path.join(args.dir, "vgg16.safetensors")
    card_path = os.path.join(args.dir, "vgg16.json")
    for path in (weights, card_path):
        if not os.path.exists(path):
            raise SystemExit(f"missing {path}: run tests/parity/make_reference.py --out {args.dir} first")
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    mean = torch.tensor(card["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(card["std"]).view(1, 3, 1, 1)
    input_range = float(card.get("input_range", 1.0))

    exporter = load_exporter()
    models = {
        "vanilla": build_vgg16(exporter, weights),
        "guided": build_vgg16(exporter, weights, GuidedReluFunction),
        "deconv": build_vgg16(exporter, weights, DeconvReluFunction),
    }
    targets = []
    for index in range(args.inputs):
        image = torch.from_numpy(np.load(os.path.join(args.dir, f"vgg16_input{index}.npy")))
        x = (image * input_range - mean) / std
        with torch.no_grad():
            target = int(models["vanilla"](x).argmax(1).item())
        targets.append(target)
        out_dir = os.path.join(args.dir, f"vgg16_input{index}_gradients")
        os.makedirs(out_dir, exist_ok=True)
        reference_logits = None
        for mode in MODES:
            logits, grad = input_gradient(models[mode], x, target)
            # The replaced ReLUs change only the backward pass.
            if reference_logits is None:
                reference_logits = logits
            elif not torch.allclose(logits, reference_logits, rtol=1e-5, atol=1e-6):
                raise SystemExit(f"{mode}: forward pass differs from the standard model")
            hwc = grad[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)
            np.save(os.path.join(out_dir, f"{mode}.npy"), hwc)
            if mode == "vanilla":
                np.save(os.path.join(out_dir, "saliency.npy"), np.abs(hwc).max(axis=2).astype(np.float32))
    with open(os.path.join(args.dir, "vgg16_gradients.json"), "w", encoding="utf-8") as out:
        json.dump({"inputs": args.inputs, "targets": targets}, out)
        out.write("\n")
    print(f"vgg16 gradients: {args.inputs} inputs x {len(MODES)} modes, targets {targets}, "
          f"{time.time() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
