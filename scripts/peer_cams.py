#!/usr/bin/python3
"""CAMs as pytorch-grad-cam 1.5 computes them, timed, for scripts/bench_perturbation_cams.sh and
scripts/bench_gradcam_peer.sh.

pytorch-grad-cam is not a Debian package and this machine has no network, so its algorithms are written
out here in eager PyTorch (Debian's python3-torch), step for step: GradCAM (forward hook on the layer
storing its output and a tensor hook storing its gradient, the summed target logits backpropagated with
the model's parameters requiring gradients as a user's model does, weights = spatial mean of the
gradients, ReLU, per-image min-max scaling and bilinear resize to the input), ScoreCAM (masks from the upsampled,
min-max normalised activations, every channel through the whole model, 16 masked inputs per pass, softmax
over channels of the target logit) and AblationCAM (the layer's output with one channel zeroed by a
forward hook, the whole model per ablated copy, 32 per pass, weights (y - y_k) / y). Only the algorithm
is the peer's: overheads of its Python wrappers (tqdm, numpy round trips) are left out, which favours it.

  /usr/bin/python3 scripts/peer_perturbation_cams.py --weights DIR --images A.png,B.png --out DIR \
      [--methods scorecam,ablationcam] [--threads 2]

Writes OUT/<image stem>.<method>.peer.npy (the raw map at layer resolution) and prints one JSON line per
image and method with the seconds it took.
"""

import argparse
import importlib.util
import json
import os
import time

import numpy as np
import torch
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_exporter():
    spec = importlib.util.spec_from_file_location("cnnvis_export_weights", os.path.join(REPO_ROOT, "scripts", "export_weights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grad_cam(model, layer, x):
    store = {}

    def save(module, inputs, output):
        store["a"] = output.detach()
        output.register_hook(lambda grad: store.__setitem__("g", grad.detach()))
    handle = layer.register_forward_hook(save)
    outputs = model(x)
    handle.remove()
    targets = outputs.argmax(1).tolist()
    model.zero_grad()
    loss = sum(outputs[i, t] for i, t in enumerate(targets))
    loss.backward(retain_graph=True)
    a, g = store["a"].numpy(), store["g"].numpy()
    cam = np.maximum((g.mean(axis=(2, 3))[:, :, None, None] * a).sum(axis=1), 0)
    cam = cam - cam.min(axis=(1, 2), keepdims=True)
    cam = cam / (1e-7 + cam.max(axis=(1, 2), keepdims=True))
    return torch.nn.functional.interpolate(torch.from_numpy(cam)[:, None], size=x.shape[-2:], mode="bilinear",
                                           align_corners=False)[:, 0].numpy()


def median_ms(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def score_cam(model, x, a, target, batch_size=16):
    with torch.no_grad():
        upsampled = torch.nn.UpsamplingBilinear2d(size=x.shape[-2:])(a[None])[0]
        flat = upsampled.view(upsampled.size(0), -1)
        maxs, mins = flat.max(dim=-1)[0][:, None, None], flat.min(dim=-1)[0][:, None, None]
        upsampled = (upsampled - mins) / (maxs - mins + 1e-8)
        masked = x[0][None] * upsampled[:, None]
        scores = []
        for i in range(0, masked.size(0), batch_size):
            scores.extend(model(masked[i:i + batch_size])[:, target].tolist())
        weights = torch.softmax(torch.tensor(scores), dim=-1)
    return torch.relu((weights[:, None, None] * a).sum(0))


def ablation_cam(model, layer, x, a, target, batch_size=32):
    with torch.no_grad():
        clean = float(model(x)[0, target])
        state = {}
        handle = layer.register_forward_hook(lambda module, inputs, output: state["replace"](output))
        scores = []
        for start in range(0, a.size(0), batch_size):
            ks = list(range(start, min(a.size(0), start + batch_size)))

            def replace(output, ks=ks):  # the batch holds len(ks) copies of the image
                out = output.clone()
                for j, k in enumerate(ks):
                    out[j, k] = 0
                return out
            state["replace"] = replace
            scores.extend(model(x.repeat(len(ks), 1, 1, 1))[:, target].tolist())
        handle.remove()
        weights = (clean - torch.tensor(scores)) / clean
    return torch.relu((weights[:, None, None] * a).sum(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="folder with vgg16.safetensors and vgg16.json")
    parser.add_argument("--images", help="comma-separated RGB images at the card's input size")
    parser.add_argument("--out")
    parser.add_argument("--gradcam-batch", type=int, default=0, help="time GradCAM on a random batch of this size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="scorecam,ablationcam")
    parser.add_argument("--layer", default="features.29")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    exporter = load_exporter()
    with open(os.path.join(args.weights, "vgg16.json"), encoding="utf-8") as f:
        card = json.load(f)
    model, _, _ = exporter.build_model("vgg16", pretrained=False, seed=0)
    arrays, _ = exporter.read_safetensors(os.path.join(args.weights, "vgg16.safetensors"))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    model.eval()
    layer = dict(model.named_modules())[args.layer]
    if args.gradcam_batch > 0:
        torch.manual_seed(7)
        x = torch.rand(args.gradcam_batch, 3, card["input_size"][0], card["input_size"][1])

        def forward():
            with torch.no_grad():
                model(x)
        forward_ms = median_ms(forward, args.repeats) / args.gradcam_batch
        gradcam_ms = median_ms(lambda: grad_cam(model, layer, x), args.repeats) / args.gradcam_batch
        print(json.dumps({"side": "peer", "method": "gradcam", "batch": args.gradcam_batch,
                          "onednn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
                          "forward_ms_per_image": round(forward_ms, 2), "gradcam_ms_per_image": round(gradcam_ms, 2),
                          "gradcam_over_forward": round(gradcam_ms / forward_ms, 3)}), flush=True)
        return
    if not args.images or not args.out:
        parser.error("--images and --out are needed unless --gradcam-batch is given")
    for p in model.parameters():  # the perturbation CAMs run under no_grad: no parameter gradients
        p.requires_grad_(False)
    mean = torch.tensor(card["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(card["std"]).view(1, 3, 1, 1)
    os.makedirs(args.out, exist_ok=True)
    for path in args.images.split(","):
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        x = (torch.from_numpy(rgb).permute(2, 0, 1)[None] - mean) / std
        captured = {}
        handle = layer.register_forward_hook(lambda module, inputs, output: captured.__setitem__("a", output))
        with torch.no_grad():
            target = int(model(x).argmax(1))
        handle.remove()
        a = captured["a"][0]
        stem = os.path.splitext(os.path.basename(path))[0]
        for method in args.methods.split(","):
            start = time.perf_counter()
            cam = score_cam(model, x, a, target) if method == "scorecam" else ablation_cam(model, layer, x, a, target)
            seconds = time.perf_counter() - start
            np.save(os.path.join(args.out, f"{stem}.{method}.peer.npy"), cam.numpy().astype(np.float32))
            print(json.dumps({"image": stem, "method": method, "target": target, "seconds": round(seconds, 3)}), flush=True)


if __name__ == "__main__":
    main()
