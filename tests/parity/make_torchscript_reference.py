#!/usr/bin/python3
"""References for the TorchScript parity test: seeded random torchvision classifiers of four kinds,
exported with scripts/export_torchscript.py, and what PyTorch eager computes on them.

For each model (ResNet-18 traced and scripted, MobileNetV2 with ReLU6, EfficientNet-B0 with SiLU and
squeeze-excitation, no ReLU) and two seeded random inputs, writes under DIR/ts/:

  <name>.pt, <name>.json                 the exported model and its card
  <name>_input<i>.npy                    1 x 3 x S x S image in [0, 1]
  <name>_logits<i>.npy                   1 x classes
  <name>_act_<layer>_<i>.npy             C x h x w activations at named modules (forward hooks)
  <name>_gradcam_<i>.npy                 h x w raw Grad-CAM at the CAM layer, top class
  <name>_{vanilla,guided}_<i>.npy        S x S x 3 input gradients of the top logit (guided: every ReLU
                                         and ReLU6 passes grad where input > 0, input < 6 for ReLU6, grad > 0)
  summary.json                           models, layers, targets

Run with /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 128
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
MODELS = [
    # name, torchvision model, scripted, tapped layers, CAM layer, guided
    ("resnet18", "resnet18", False, ["layer1", "layer3.1.conv2", "layer4.1.bn2", "layer4"], "layer4", True),
    ("resnet18_scripted", "resnet18", True, ["layer2.0.downsample", "layer4"], "layer4", True),
    ("mobilenet_v2", "mobilenet_v2", False, ["features.3", "features.17.conv.2", "features.18"], "features.18", True),
    ("efficientnet_b0", "efficientnet_b0", False, ["features.4", "features.6.0.block.2", "features"], "features",
     False),
]


def load_exporter():
    path = os.path.join(REPO_ROOT, "scripts", "export_torchscript.py")
    spec = importlib.util.spec_from_file_location("cnnvis_export_torchscript", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GuidedClip(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, upper):
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        passes = x > 0
        if ctx.upper is not None:
            passes = passes & (x < ctx.upper)
        return grad.clamp_min(0) * passes.to(grad.dtype), None


class GuidedModule(torch.nn.Module):
    def __init__(self, upper):
        super().__init__()
        self.upper = upper

    def forward(self, x):
        return GuidedClip.apply(x, self.upper)


def make_guided(module):
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU6):
            setattr(module, name, GuidedModule(6.0))
        elif isinstance(child, torch.nn.ReLU):
            setattr(module, name, GuidedModule(None))
        else:
            make_guided(child)


def input_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x)[0, target].backward()
    return x.grad[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--inputs", type=int, default=2)
    args = parser.parse_args()
    exporter = load_exporter()
    out = os.path.join(args.dir, "ts")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    summary = {"inputs": args.inputs, "size": SIZE, "models": []}
    for name, arch, scripted, layers, cam_layer, guided in MODELS:
        argv = ["--model", arch, "--random", "--seed", "0", "--num-classes", "10", "--size", str(SIZE),
                "--out", os.path.join(out, name + ".pt")]
        exporter.main(argv + (["--script"] if scripted else []))
        model, _ = exporter.torchvision_model(arch, False, 0, 10)  # the same seed: the same weights
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        for m in model.modules():
            if hasattr(m, "inplace"):
                m.inplace = False  # hooks must see each module's own output
        modules = dict(model.named_modules())
        captured = {}

        def hook_for(layer):
            def hook(module, inputs, output):
                output.retain_grad()
                captured[layer] = output
                # A copy now: ResNet's `out += identity` changes bn2's output in place afterwards.
                captured[layer + ":value"] = output.detach().clone()
            return hook

        handles = [modules[layer].register_forward_hook(hook_for(layer)) for layer in set(layers + [cam_layer])]
        targets = []
        for i in range(args.inputs):
            generator = torch.Generator().manual_seed(100 + i)
            image = torch.rand(1, 3, SIZE, SIZE, generator=generator)
            np.save(os.path.join(out, f"{name}_input{i}.npy"), image.numpy())
            x = ((image - MEAN) / STD).requires_grad_(True)
            logits = model(x)
            target = int(logits.argmax(1))
            targets.append(target)
            np.save(os.path.join(out, f"{name}_logits{i}.npy"), logits.detach().numpy())
            for layer in layers:
                np.save(os.path.join(out, f"{name}_act_{layer}_{i}.npy"), captured[layer + ":value"][0].numpy())
            logits[0, target].backward()
            a = captured[cam_layer + ":value"][0]
            g = captured[cam_layer].grad.detach()[0]
            cam = torch.relu((g.mean(dim=(1, 2), keepdim=True) * a).sum(0))
            np.save(os.path.join(out, f"{name}_gradcam_{i}.npy"), cam.numpy().astype(np.float32))
            np.save(os.path.join(out, f"{name}_vanilla_{i}.npy"), x.grad[0].permute(1, 2, 0).contiguous().numpy())
        for h in handles:
            h.remove()
        if guided:
            make_guided(model)
            for i in range(args.inputs):
                image = torch.from_numpy(np.load(os.path.join(out, f"{name}_input{i}.npy")))
                x = (image - MEAN) / STD
                np.save(os.path.join(out, f"{name}_guided_{i}.npy"), input_gradient(model, x, targets[i]))
        summary["models"].append({"name": name, "layers": layers, "cam_layer": cam_layer, "guided": guided,
                                  "targets": targets})
        print(f"{name}: targets {targets}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
