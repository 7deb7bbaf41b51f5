#!/usr/bin/python3
"""References for FullGrad on TorchScript models: pytorch-grad-cam's FullGrad algorithm in PyTorch eager
(the functions of make_cam_reference.py) on models exported with scripts/export_torchscript.py.

torchvision initialises every batch norm to gamma 1, beta 0, mean 0, var 1, whose bias term is zero
everywhere; here the batch norms get seeded random statistics, so that each bias term counts. Models:
ResNet-18 traced and scripted (batch norms, convolutions without bias, in-place ReLUs after the batch
norms), and a small net whose convolutions have biases, with and without a batch norm after them.

Writes under DIR/ts_fullgrad/:

  <name>.pt, <name>.json       the exported model and its card
  input<i>.npy                 1 x 3 x S x S image in [0, 1]
  <name>_fullgrad_<i>.npy      S x S FullGrad map of the top class
  <name>_inputterm_<i>.npy     S x S its input-gradient term alone
  summary.json                 models, their number of biased layers, targets

Run with /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 64
INPUTS = 2
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ConvBiasNet(torch.nn.Module):
    """Convolutions with biases; a batch norm after two of them; functional and module ReLUs."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.pool = torch.nn.MaxPool2d(2)
        self.conv3 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.bn3 = torch.nn.BatchNorm2d(16, eps=1e-3)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def randomise_batch_norms(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.5 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.5 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the parity fixture's directory")
    args = parser.parse_args()
    exporter = load("cnnvis_export_torchscript", "scripts/export_torchscript.py")
    cam = load("cnnvis_cam_reference", "tests/parity/make_cam_reference.py")
    out_dir = os.path.join(args.dir, "ts_fullgrad")
    os.makedirs(out_dir, exist_ok=True)
    generator = torch.Generator().manual_seed(7)
    inputs = [torch.rand(1, 3, SIZE, SIZE, generator=generator) for _ in range(INPUTS)]
    for i, image in enumerate(inputs):
        np.save(os.path.join(out_dir, f"input{i}.npy"), image.numpy().astype(np.float32))

    torch.manual_seed(0)
    import torchvision
    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    randomise_batch_norms(resnet, generator)
    torch.manual_seed(1)
    small = ConvBiasNet()
    randomise_batch_norms(small, generator)
    resnet_state = os.path.join(out_dir, "resnet18_state.pth")
    torch.save(resnet.state_dict(), resnet_state)
    small_module = os.path.join(out_dir, "convbias_module.pth")
    torch.save(small, small_module)  # a whole model: ConvBiasNet is this script's __main__ class
    size = ["--size", str(SIZE)]
    exports = [
        ("resnet18", resnet, ["--module", resnet_state, "--model", "resnet18", "--num-classes", "10"]),
        ("resnet18_scripted", resnet, ["--module", resnet_state, "--model", "resnet18", "--num-classes", "10",
                                       "--script"]),
        ("convbias", small, ["--module", small_module]),
    ]
    summary = {"size": SIZE, "inputs": INPUTS, "models": []}
    for name, model, export_args in exports:
        exporter.main(export_args + size + ["--out", os.path.join(out_dir, name + ".pt")])
        model.eval()
        for module in model.modules():
            if isinstance(module, torch.nn.ReLU):
                module.inplace = False  # a gradient kept on a batch norm's output must not be the ReLU's
        for p in model.parameters():
            p.requires_grad_(False)
        biased = cam.biased_modules(model)
        assert any(float(b.abs().max()) > 0.1 for _, b in biased), "degenerate biases"
        outputs = []

        def keep(module, inputs, output):
            output.retain_grad()
            outputs.append(output)

        handles = [module.register_forward_hook(keep) for module, _ in biased]
        targets = []
        for i, image in enumerate(inputs):
            x = ((image - MEAN) / STD).requires_grad_(True)
            outputs.clear()
            logits = model(x)
            target = int(logits.argmax(1))
            logits[0, target].backward()
            targets.append(target)
            np.save(os.path.join(out_dir, f"{name}_fullgrad_{i}.npy"),
                    cam.full_grad(x, x.grad, biased, outputs).detach().numpy().astype(np.float32))
            # The input term alone: the test checks that the bias terms change the map beyond its bound.
            np.save(os.path.join(out_dir, f"{name}_inputterm_{i}.npy"),
                    cam.full_grad(x, x.grad, [], []).detach().numpy().astype(np.float32))
        for h in handles:
            h.remove()
        summary["models"].append({"name": name, "biased_layers": len(biased), "targets": targets})
        print(f"{name}: FullGrad over {len(biased)} biased layers for {INPUTS} inputs")
    os.remove(resnet_state)
    os.remove(small_module)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
