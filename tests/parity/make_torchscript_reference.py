#!/usr/bin/python3
"""References for the TorchScript parity test: seeded random torchvision classifiers of four kinds,
exported with scripts/export_torchscript.py, a small network whose ReLUs are all functional calls, and
what PyTorch eager computes on them.

For each model (ResNet-18 traced and scripted, MobileNetV2 with ReLU6, EfficientNet-B0 with SiLU and
squeeze-excitation, no ReLU; functional_relu: F.relu, torch.relu, F.relu(inplace=True) and F.relu6 in its
forward, no ReLU module) and two seeded random inputs, writes under DIR/ts/:

  <name>.pt, <name>.json                 the exported model and its card
  <name>_input<i>.npy                    1 x 3 x S x S image in [0, 1]
  <name>_logits<i>.npy                   1 x classes
  <name>_act_<layer>_<i>.npy             C x h x w activations at named modules (forward hooks)
  <name>_gradcam_<i>.npy                 h x w raw Grad-CAM at the CAM layer, top class
  <name>_{vanilla,guided,deconv}_<i>.npy S x S x 3 input gradients of the top logit (guided: every ReLU
                                         and ReLU6 passes grad where input > 0, input < 6 for ReLU6, grad > 0;
                                         deconv: where grad > 0, whatever the input)
  <name>_smoothgrad_0.npy                for SALIENCY_MODELS: S x S x 3 SmoothGrad of input 0: the mean input gradient over
                                         SMOOTH["samples"] noisy copies, the noise drawn as cnnvis draws it
                                         (splitmix64 of the seed and the sample index seeds a CPU generator,
                                         randn 3 x S x S, times 0.15 of the image's range)
  <name>_integrated_0.npy                for SALIENCY_MODELS: S x S x 3 integrated gradients of input 0 from the zero baseline
                                         (midpoint rule, INTEGRATED_STEPS steps): x * mean gradient
  <name>_ablationcam_<i>.npy             h x w Ablation-CAM at the ablation layer (pytorch-grad-cam's
                                         AblationCAM: each channel zeroed in turn by a forward hook,
                                         w_k = (y - y_k) / y, ReLU(sum_k w_k A_k)), for ABLATION's models
  summary.json                           models, layers, targets

Run with /usr/bin/python3.
"""

import argparse
import contextlib
import copy
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
    ("functional_relu", None, False, ["conv1", "conv3", "conv4"], "conv4", True),
]


SMOOTH = {"samples": 8, "noise": 0.15, "seed": 7}
INTEGRATED_STEPS = 8
# SmoothGrad and integrated gradients. Not MobileNetV2: its eager SmoothGrad itself moves by 0.5% (of the map's
# maximum) when the noise sd changes by 4e-8 relative, so float rounding alone puts it beyond any 1e-4 check.
SALIENCY_MODELS = {"resnet18", "functional_relu"}
# Ablation-CAM, model: (layer, inputs). ResNet-18's layer3 feeds layer4.0's main path and its downsample (the
# replaced output is read twice); the functional model's conv3 is rectified in place (relu_) after it.
ABLATION = {"resnet18": ("layer3", [0]), "functional_relu": ("conv3", [0, 1])}
MASK64 = (1 << 64) - 1


class FunctionalRelu(torch.nn.Module):
    """Every rectifier a functional call (no ReLU module for a hook to find): the graph rewrite must catch
    aten::relu, relu_ and relu6 wherever they come from (nn.ReLU6 modules trace to hardtanh instead)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv3 = torch.nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.conv4 = torch.nn.Conv2d(24, 24, 3, padding=1)
        self.fc = torch.nn.Linear(24, 10)

    def forward(self, x):
        x = torch.nn.functional.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.nn.functional.relu(self.conv3(x), inplace=True)
        x = torch.nn.functional.relu6(self.conv4(x) * 60)  # scaled: about 4% of its inputs pass 6
        return self.fc(x.mean((2, 3)))


def export_functional(path):
    torch.manual_seed(0)
    model = FunctionalRelu().eval()
    traced = torch.jit.trace(model, torch.zeros(1, 3, SIZE, SIZE), check_trace=False)
    kinds = {node.kind() for node in traced.inlined_graph.nodes()}
    assert {"aten::relu", "aten::relu_", "aten::relu6"} <= kinds, f"the trace lost a functional ReLU: {kinds}"
    traced.save(path)
    card = {"name": "functional_relu", "architecture": "torchscript", "input_size": [SIZE, SIZE],
            "channel_order": "RGB", "input_range": 1.0, "mean": MEAN.flatten().tolist(), "std": STD.flatten().tolist()}
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(card, f, indent=2)
    return model


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


class DeconvClip(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, upper):
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0), None


RULES = {"guided": GuidedClip, "deconv": DeconvClip}


class RuleModule(torch.nn.Module):
    def __init__(self, rule, upper):
        super().__init__()
        self.rule = rule
        self.upper = upper

    def forward(self, x):
        return self.rule.apply(x, self.upper)


def with_rule(module, rule):
    """A copy of the model whose ReLU and ReLU6 modules follow `rule`."""
    module = copy.deepcopy(module)

    def replace(parent):
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.ReLU6):
                setattr(parent, name, RuleModule(rule, 6.0))
            elif isinstance(child, torch.nn.ReLU):
                setattr(parent, name, RuleModule(rule, None))
            else:
                replace(child)
    replace(module)
    return module


@contextlib.contextmanager
def functional_rule(rule):
    """F.relu, torch.relu and F.relu6 follow `rule` while inside (the functional model's rectifiers)."""
    saved = (torch.nn.functional.relu, torch.relu, torch.nn.functional.relu6)
    torch.nn.functional.relu = lambda x, inplace=False: rule.apply(x, None)
    torch.relu = lambda x: rule.apply(x, None)
    torch.nn.functional.relu6 = lambda x, inplace=False: rule.apply(x, 6.0)
    try:
        yield
    finally:
        torch.nn.functional.relu, torch.relu, torch.nn.functional.relu6 = saved


def hwc(t):
    return t[0].permute(1, 2, 0).contiguous().numpy().astype(np.float32)


def input_gradient(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x)[0, target].backward()
    return hwc(x.grad)


def mix(z):
    """splitmix64, as src/methods/saliency.cpp decorrelates its per-sample seeds."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def mean_gradient(model, rows, target):
    """The mean over rows (K x 3 x S x S) of the input gradient of the target logit."""
    rows = rows.clone().requires_grad_(True)
    model(rows)[:, target].sum().backward()
    return rows.grad.mean(0, keepdim=True)


def smoothgrad(model, x, target):
    # In float32, as cnnvis computes it (its noise fraction is a float).
    sigma = (x.max() - x.min()) * float(np.float32(SMOOTH["noise"]))
    noise = []
    for s in range(SMOOTH["samples"]):
        generator = torch.Generator().manual_seed(mix(SMOOTH["seed"] ^ mix(s)))
        noise.append(torch.randn(x.shape[1:], generator=generator))
    return hwc(mean_gradient(model, x + torch.stack(noise) * sigma, target))


def integrated_gradients(model, x, target):
    alphas = (torch.arange(INTEGRATED_STEPS, dtype=torch.float64) + 0.5) / INTEGRATED_STEPS
    rows = torch.cat([x * float(a) for a in alphas])
    return hwc(x * mean_gradient(model, rows, target))


def ablation_cam(model, layer, x, target, batch=64):
    """pytorch-grad-cam's AblationCAM: the target's logit with each channel of the layer's output zeroed by
    a forward hook (the whole network re-run), w_k = (y - y_k) / y, cam = ReLU(sum_k w_k A_k)."""
    module = dict(model.named_modules())[layer]
    captured = {}
    handle = module.register_forward_hook(lambda m, i, out: captured.__setitem__("a", out.detach().clone()))
    with torch.no_grad():
        y = float(model(x)[0, target])
    handle.remove()
    a = captured["a"][0]
    channels = a.shape[0]
    ablated = []
    for start in range(0, channels, batch):
        ks = list(range(start, min(start + batch, channels)))

        def zero(m, i, out, ks=ks):
            out = out.clone()
            for row, k in enumerate(ks):
                out[row, k] = 0
            return out
        handle = module.register_forward_hook(zero)
        with torch.no_grad():
            ablated.append(model(x.expand(len(ks), -1, -1, -1))[:, target])
        handle.remove()
    weights = (y - torch.cat(ablated)) / y
    return torch.relu((weights.view(-1, 1, 1) * a).sum(0)).numpy().astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--inputs", type=int, default=2)
    args = parser.parse_args()
    exporter = load_exporter()
    out = os.path.join(args.dir, "ts")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    summary = {"inputs": args.inputs, "size": SIZE, "smooth": SMOOTH, "integrated_steps": INTEGRATED_STEPS,
               "models": []}
    for name, arch, scripted, layers, cam_layer, guided in MODELS:
        if arch is None:
            model = export_functional(os.path.join(out, name + ".pt"))
        else:
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
        inputs = [(torch.from_numpy(np.load(os.path.join(out, f"{name}_input{i}.npy"))) - MEAN) / STD
                  for i in range(args.inputs)]
        if guided:  # the models with ReLUs: guided backprop and deconvnet
            for rule in ("guided", "deconv"):
                ruled = with_rule(model, RULES[rule])
                with functional_rule(RULES[rule]):
                    for i, x in enumerate(inputs):
                        np.save(os.path.join(out, f"{name}_{rule}_{i}.npy"), input_gradient(ruled, x, targets[i]))
        entry = {"name": name, "layers": layers, "cam_layer": cam_layer, "guided": guided, "targets": targets,
                 "saliency": name in SALIENCY_MODELS}
        if entry["saliency"]:
            np.save(os.path.join(out, f"{name}_smoothgrad_0.npy"), smoothgrad(model, inputs[0], targets[0]))
            np.save(os.path.join(out, f"{name}_integrated_0.npy"), integrated_gradients(model, inputs[0], targets[0]))
        if name in ABLATION:
            layer, which = ABLATION[name]
            for i in which:
                np.save(os.path.join(out, f"{name}_ablationcam_{i}.npy"), ablation_cam(model, layer, inputs[i], targets[i]))
            entry["ablation"] = {"layer": layer, "inputs": which}
        summary["models"].append(entry)
        print(f"{name}: targets {targets}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
