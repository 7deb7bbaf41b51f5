#!/usr/bin/python3
"""Reference class activation maps for the C++ CAM parity test, computed with Debian's python3-torch.

Loads the seeded random models the parity fixture exported (DIR/<arch>.safetensors, DIR/<arch>.json,
DIR/<arch>_input<i>.npy), and for each input and the top-scoring class writes, following the formulas of
../shared/reference/ALGORITHMS.md and pytorch-grad-cam's implementations:

  DIR/cam/<arch>_<method>_<i>.npy    the raw map at layer resolution (float32, h x w)

for vgg16 at features.29 (gradcam, gradcam++, xgradcam, layercam, hirescam, eigencam, eigengradcam, and
fullgrad, whose map is at input resolution) and
googlenet at inception5b (the same plus Zhou's cam from the fc weights). The perturbation CAMs run one
forward pass per channel, so they are checked on a small seeded input (64 x 64, normalised), with the
algorithms as pytorch-grad-cam implements them (whole-model passes, no shortcut):

  DIR/cam/<arch>_small_input.npy                  the normalised input, 1 x 3 x 64 x 64
  DIR/cam/<arch>_small_<scorecam|ablationcam>.npy the raw map at layer resolution

for vgg16 at features.29 and googlenet at inception4e (so that the layers after it hold Inception
blocks). Run with /usr/bin/python3.
"""

import argparse
import importlib.util
import json
import os
import types

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_exporter():
    path = os.path.join(REPO_ROOT, "scripts", "export_weights.py")
    spec = importlib.util.spec_from_file_location("cnnvis_export_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_component_projection(m):
    """pytorch-grad-cam's get_2d_projection of one C x h x w array (numpy's SVD, in float64), with the
    sign chosen so that the projection correlates positively with the channel mean."""
    c, h, w = m.shape
    positions = m.numpy().astype(np.float64).reshape(c, -1).T
    centred = positions - positions.mean(axis=0)
    if not np.any(centred):
        return torch.zeros(h, w)
    _, _, vt = np.linalg.svd(centred, full_matrices=True)
    projection = centred @ vt[0, :]
    strength = positions.mean(axis=1)
    if np.dot(projection - projection.mean(), strength - strength.mean()) < 0:
        projection = -projection
    return torch.from_numpy(projection.reshape(h, w))


def cams_from(a, g, fc_row=None):
    """a, g: C x h x w activations and gradients of the target logit. Returns method -> h x w."""
    out = {}
    out["gradcam"] = torch.relu((g.mean(dim=(1, 2), keepdim=True) * a).sum(0))
    g2, g3 = g ** 2, g ** 3
    alpha = g2 / (2 * g2 + a.sum(dim=(1, 2), keepdim=True) * g3 + 1e-7)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    out["gradcam++"] = torch.relu(((torch.relu(g) * alpha).sum(dim=(1, 2), keepdim=True) * a).sum(0))
    out["xgradcam"] = torch.relu((((g * a).sum(dim=(1, 2), keepdim=True) /
                                   (a.sum(dim=(1, 2), keepdim=True) + 1e-7)) * a).sum(0))
    out["layercam"] = torch.relu((torch.relu(g) * a).sum(0))
    out["hirescam"] = torch.relu((g * a).sum(0))
    out["eigencam"] = torch.relu(first_component_projection(a))
    out["eigengradcam"] = torch.relu(first_component_projection(g * a))
    if fc_row is not None:
        out["cam"] = torch.relu((fc_row.view(-1, 1, 1) * a).sum(0))
    return out


def score_cam(model, x, a, target):
    """pytorch-grad-cam's ScoreCAM, as the benchmark's peer script writes it out (one implementation)."""
    path = os.path.join(REPO_ROOT, "scripts", "peer_cams.py")
    spec = importlib.util.spec_from_file_location("cnnvis_peer_cams", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_cam(model, x, a, target)


def ablation_cam(model, layer, x, a, target, batch_size=32):
    """Ablation-CAM with whole-model passes: the layer's output with one channel zeroed (a forward hook
    replaces it), weights (y - y_k) / y."""
    with torch.no_grad():
        clean = float(model(x)[0, target])
        state = {}
        handle = layer.register_forward_hook(lambda module, inputs, output: state["replace"](output))
        scores = []
        channels = a.size(0)
        for start in range(0, channels, batch_size):
            ks = list(range(start, min(channels, start + batch_size)))

            def replace(output, ks=ks):
                out = output.repeat(len(ks), 1, 1, 1)
                for j, k in enumerate(ks):
                    out[j, k] = 0
                return out
            state["replace"] = replace
            scores.extend(model(x)[:, target].tolist())
        handle.remove()
        weights = (clean - torch.tensor(scores)) / clean
    return torch.relu((weights[:, None, None] * a).sum(0))


def perturbation_references(model, arch, out_dir):
    layer_name = "features.29" if arch == "vgg16" else "inception4e"
    layer = dict(model.named_modules())[layer_name]
    captured = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.__setitem__("a", output))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        target = int(model(x).argmax(1))
    handle.remove()
    a = captured["a"].detach()[0]
    np.save(os.path.join(out_dir, f"{arch}_small_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out_dir, f"{arch}_small_scorecam.npy"), score_cam(model, x, a, target).numpy().astype(np.float32))
    np.save(os.path.join(out_dir, f"{arch}_small_ablationcam.npy"),
            ablation_cam(model, layer, x, a, target).numpy().astype(np.float32))
    print(f"{arch}: Score-CAM and Ablation-CAM references at {layer_name} (64 x 64 input, class {target})")


def biased_modules(model):
    """pytorch-grad-cam FullGrad's layers: every Conv2d with a bias and every BatchNorm2d, with the bias
    each adds per channel (BatchNorm: beta - mean * gamma / sqrt(var + eps))."""
    out = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            out.append((module, module.bias.detach()))
        elif isinstance(module, torch.nn.BatchNorm2d):
            scale = module.weight.detach() / torch.sqrt(module.running_var + module.eps)
            out.append((module, module.bias.detach() - module.running_mean * scale))
    return out


def scale_channels(m, size):
    """pytorch-grad-cam's scale_accross_batch_and_channels for one image: per channel m -= min,
    m /= (1e-7 + max), bilinear resize (OpenCV's half-pixel centres = align_corners False)."""
    flat = m.reshape(m.size(0), -1)
    m = m - flat.min(dim=1)[0][:, None, None]
    m = m / (1e-7 + m.reshape(m.size(0), -1).max(dim=1)[0][:, None, None])
    if tuple(m.shape[-2:]) != tuple(size):
        m = torch.nn.functional.interpolate(m[None], size=size, mode="bilinear", align_corners=False)[0]
    return m


def full_grad(x, x_grad, biased, outputs):
    size = x.shape[-2:]
    total = scale_channels((x_grad * x).abs()[0].detach(), size).sum(0)
    for (module, bias), z in zip(biased, outputs):
        total = total + scale_channels((bias[:, None, None] * z.grad[0]).abs(), size).sum(0)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="the parity fixture's directory")
    args = parser.parse_args()
    exporter = load_exporter()
    out_dir = os.path.join(args.dir, "cam")
    os.makedirs(out_dir, exist_ok=True)
    for arch, layer_name in (("vgg16", "features.29"), ("googlenet", "inception5b")):
        with open(os.path.join(args.dir, f"{arch}.json"), encoding="utf-8") as f:
            card = json.load(f)
        model, _, _ = exporter.build_model(arch, pretrained=False, seed=0,
                                           transform_input=card["transform_input"] if arch == "googlenet" else None)
        arrays, _ = exporter.read_safetensors(os.path.join(args.dir, f"{arch}.safetensors"))
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        model.eval()
        for module in model.modules():
            if isinstance(module, torch.nn.ReLU):
                module.inplace = False
            if type(module).__name__ == "BasicConv2d":
                # torchvision's BasicConv2d applies F.relu in place to the batch norm's output, so a
                # gradient kept on that output would be the ReLU's: the same computation, not in place.
                module.forward = types.MethodType(lambda self, x: torch.relu(self.bn(self.conv(x))), module)
        for p in model.parameters():
            p.requires_grad_(False)
        captured = {}
        layer = dict(model.named_modules())[layer_name]

        def hook(module, inputs, output):
            output.retain_grad()
            captured["a"] = output

        handle = layer.register_forward_hook(hook)
        biased = biased_modules(model)
        outputs = []

        def keep(module, inputs, output):
            output.retain_grad()
            outputs.append(output)
        keep_handles = [module.register_forward_hook(keep) for module, _ in biased]
        mean = torch.tensor(card["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(card["std"]).view(1, 3, 1, 1)
        i = 0
        while os.path.exists(os.path.join(args.dir, f"{arch}_input{i}.npy")):
            image = torch.from_numpy(np.load(os.path.join(args.dir, f"{arch}_input{i}.npy")))
            x = ((image - mean) / std).requires_grad_(True)  # so that the graph reaches the layer
            outputs.clear()
            logits = model(x)
            target = int(logits.argmax(1))
            logits[0, target].backward()
            a = captured["a"].detach()[0]
            g = captured["a"].grad.detach()[0]
            fc_row = model.fc.weight[target] if arch == "googlenet" else None
            np.save(os.path.join(out_dir, f"{arch}_fullgrad_{i}.npy"),
                    full_grad(x, x.grad, biased, outputs).numpy().astype(np.float32))
            for method, cam in cams_from(a, g, fc_row).items():
                np.save(os.path.join(out_dir, f"{arch}_{method}_{i}.npy"), cam.numpy().astype(np.float32))
            i += 1
        handle.remove()
        for h in keep_handles:
            h.remove()
        print(f"{arch}: reference CAMs at {layer_name} (and FullGrad) for {i} inputs")
        perturbation_references(model, arch, out_dir)


if __name__ == "__main__":
    main()
