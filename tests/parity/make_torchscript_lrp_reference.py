#!/usr/bin/python3
"""References for LRP on TorchScript models: the relevance at the input, computed in PyTorch eager by an
explicit walk down each torchvision architecture (the rules of src/methods/lrp.h, as zennit's composites
apply them), for models exported with scripts/export_torchscript.py.

The walk knows the architectures (ResNet's BasicBlock, MobileNetV2's InvertedResidual) and merges each
batch norm into the convolution before it; cnnvis instead rewrites the graph it loads, knowing no
architecture. Rules: epsilon for linear layers (and convolutions under "epsilon"), z+ for convolutions
otherwise, flat or z-box for the first convolution (presets epsilon-plus-flat, epsilon-plus-box), ReLU and
ReLU6 pass, max pooling to the window's maximum, average pooling by epsilon, a residual sum a + b hands
a / (a + b) and b / (a + b) of its relevance to its terms. The batch norms get seeded random scales and
shifts and running statistics measured on random images (torchvision initialises them to the identity).

Writes under DIR/ts_lrp/:

  <name>.pt, <name>.json          the exported model and its card
  input<i>.npy                    1 x 3 x S x S image in [0, 1]
  <name>_<preset>_<i>.npy         1 x 3 x S x S relevance of the top class's logit
  summary.json                    models, presets, epsilon, targets

Run with /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 64
INPUTS = 2
EPSILON = 1e-6
PRESETS = ["epsilon", "epsilon-plus", "epsilon-plus-flat", "epsilon-plus-box"]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
LOW = (0 - MEAN) / STD
HIGH = (1 - MEAN) / STD


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stabilised(z):
    return z + EPSILON * (2 * (z >= 0).to(z.dtype) - 1)


def transpose(f, x, s):
    """J^T s of the linear map f at x."""
    x = x.detach().requires_grad_(True)
    (f(x) * s).sum().backward()
    return x.grad.detach()


class Affine:
    """A convolution (with the batch norm after it merged in) or a linear layer."""

    def __init__(self, layer, bn=None):
        self.conv = isinstance(layer, torch.nn.Conv2d)
        w = layer.weight.detach()
        b = layer.bias.detach() if layer.bias is not None else torch.zeros(w.shape[0])
        if bn is not None:
            g = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            w = w * g.view(-1, 1, 1, 1)
            b = (b - bn.running_mean) * g + bn.bias.detach()
        self.w, self.b, self.layer = w, b, layer

    def apply(self, x, w, b=None):
        if not self.conv:
            return F.linear(x, w, b)
        c = self.layer
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)


class Walk:
    def __init__(self, preset):
        self.preset = preset

    def affine(self, a, x, r, first=False):
        """first: the network's first convolution."""
        f = lambda w: (lambda inp: a.apply(inp, w))  # noqa: E731
        if first and self.preset == "epsilon-plus-flat":
            ones_w, ones_x = torch.ones_like(a.w), torch.ones_like(x)
            return transpose(f(ones_w), ones_x, r / stabilised(a.apply(ones_x, ones_w)))
        if first and self.preset == "epsilon-plus-box":
            wp, wn = a.w.clamp(min=0), a.w.clamp(max=0)
            low, high = LOW * torch.ones_like(x), HIGH * torch.ones_like(x)
            s = r / stabilised(a.apply(x, a.w) - a.apply(low, wp) - a.apply(high, wn))
            return x * transpose(f(a.w), x, s) - low * transpose(f(wp), low, s) - high * transpose(f(wn), high, s)
        if a.conv and self.preset != "epsilon":
            wp, wn = a.w.clamp(min=0), a.w.clamp(max=0)
            xp, xn = x.clamp(min=0), x.clamp(max=0)
            s = r / stabilised(a.apply(xp, wp) + a.apply(xn, wn))
            return xp * transpose(f(wp), xp, s) + xn * transpose(f(wn), xn, s)
        return x * transpose(f(a.w), x, r / stabilised(a.apply(x, a.w, a.b)))

    @staticmethod
    def linear_operator(op, x, r):
        return x * transpose(op, x, r / stabilised(op(x)))

    def chain(self, modules, x, r, first=False):
        """conv [bn] [activation] ... in order: the inputs recorded forward, the relevance handed back."""
        steps, h, i = [], x, 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, torch.nn.Conv2d):
                bn = modules[i + 1] if i + 1 < len(modules) and isinstance(modules[i + 1], torch.nn.BatchNorm2d) else None
                steps.append((Affine(m, bn), h))
                h = bn(m(h)) if bn is not None else m(h)
                i += 2 if bn is not None else 1
            elif isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.Dropout)):
                h = m(h)  # the relevance passes
                i += 1
            else:
                raise SystemExit(f"no rule for {type(m).__name__}")
        for k in reversed(range(len(steps))):
            a, inp = steps[k]
            r = self.affine(a, inp, r, first=first and k == 0)
        return r


def leaves(module):
    return [m for m in module.modules() if len(list(m.children())) == 0]


def resnet_relevance(model, x, target, preset):
    walk = Walk(preset)
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
    inputs, h = [], stem
    for b in blocks:
        inputs.append(h)
        h = b(h)
    pooled = torch.flatten(model.avgpool(h), 1)
    logits = model.fc(pooled)
    r = torch.zeros_like(logits)
    r[0, target] = logits[0, target]
    r = walk.affine(Affine(model.fc), pooled, r).view(1, -1, 1, 1)
    r = walk.linear_operator(model.avgpool, h, r)
    for b, inp in zip(reversed(blocks), reversed(inputs)):
        h1 = b.relu(b.bn1(b.conv1(inp)))
        main = b.bn2(b.conv2(h1))
        short = b.downsample(inp) if b.downsample is not None else inp
        q = r / stabilised(main + short)  # the block's last ReLU passes
        r_h1 = walk.affine(Affine(b.conv2, b.bn2), h1, main * q)
        r_in = walk.affine(Affine(b.conv1, b.bn1), inp, r_h1)
        if b.downsample is not None:
            r_in = r_in + walk.affine(Affine(b.downsample[0], b.downsample[1]), inp, short * q)
        else:
            r_in = r_in + short * q
        r = r_in
    conv1_out = model.relu(model.bn1(model.conv1(x)))
    r = transpose(model.maxpool, conv1_out, r)
    return walk.affine(Affine(model.conv1, model.bn1), x, r, first=True), logits


def mobilenet_relevance(model, x, target, preset):
    walk = Walk(preset)
    features = list(model.features)
    inputs, h = [], x
    for f in features:
        inputs.append(h)
        h = f(h)
    pooled = torch.flatten(F.adaptive_avg_pool2d(h, (1, 1)), 1)
    logits = model.classifier(pooled)
    r = torch.zeros_like(logits)
    r[0, target] = logits[0, target]
    r = walk.affine(Affine(model.classifier[1]), pooled, r).view(1, -1, 1, 1)
    r = walk.linear_operator(lambda t: F.adaptive_avg_pool2d(t, (1, 1)), h, r)
    for index in reversed(range(len(features))):
        f, inp = features[index], inputs[index]
        if getattr(f, "use_res_connect", False):
            main = f.conv(inp)
            q = r / stabilised(main + inp)
            r = walk.chain(leaves(f.conv), inp, main * q) + inp * q
        else:
            r = walk.chain(leaves(f), inp, r, first=index == 0)
    return r, logits


def calibrate_batch_norms(model, generator):
    """Seeded random gamma and beta, and running statistics measured on random images (train mode,
    cumulative average): torchvision's identity batch norms let MobileNetV2's activations vanish."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(c, generator=generator))
                module.bias.copy_(0.2 * torch.randn(c, generator=generator))
            module.momentum = None
    model.train()
    with torch.no_grad():
        model((torch.rand(16, 3, SIZE, SIZE, generator=generator) - MEAN) / STD)
    model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the parity fixture's directory")
    args = parser.parse_args()
    exporter = load("cnnvis_export_torchscript", "scripts/export_torchscript.py")
    out_dir = os.path.join(args.dir, "ts_lrp")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(17)
    inputs = [torch.rand(1, 3, SIZE, SIZE, generator=generator) for _ in range(INPUTS)]
    for i, image in enumerate(inputs):
        np.save(os.path.join(out_dir, f"input{i}.npy"), image.numpy().astype(np.float32))
    import torchvision
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    torch.manual_seed(1)
    mobilenet = torchvision.models.mobilenet_v2(weights=None, num_classes=10)
    exports = [("resnet18", resnet, resnet_relevance, []), ("resnet18_scripted", resnet, resnet_relevance, ["--script"]),
               ("mobilenet_v2", mobilenet, mobilenet_relevance, [])]
    summary = {"size": SIZE, "inputs": INPUTS, "epsilon": EPSILON, "presets": PRESETS, "models": []}
    for name, model, relevance, extra in exports:
        if not extra:
            calibrate_batch_norms(model, generator)
        arch = "resnet18" if model is resnet else "mobilenet_v2"
        state = os.path.join(out_dir, name + "_state.pth")
        torch.save(model.state_dict(), state)
        exporter.main(["--module", state, "--model", arch, "--num-classes", "10", "--size", str(SIZE),
                       "--out", os.path.join(out_dir, name + ".pt")] + extra)
        os.remove(state)
        model.eval()
        for module in model.modules():
            if hasattr(module, "inplace"):
                module.inplace = False
        for p in model.parameters():
            p.requires_grad_(False)
        targets = []
        for i, image in enumerate(inputs):
            x = (image - MEAN) / STD
            with torch.no_grad():
                target = int(model(x).argmax(1))
            targets.append(target)
            for preset in PRESETS:
                r, logits = relevance(model, x, target, preset)
                np.save(os.path.join(out_dir, f"{name}_{preset}_{i}.npy"), r.detach().numpy().astype(np.float32))
                if preset == "epsilon":
                    print(f"{name} input {i}: logit {float(logits[0, target]):.4f}, "
                          f"epsilon relevance sum {float(r.sum()):.4f}")
        summary["models"].append({"name": name, "targets": targets})
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
