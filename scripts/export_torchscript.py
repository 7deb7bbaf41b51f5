#!/usr/bin/python3
"""Export a classifier as TorchScript for cnnvis (`cnnvis gradcam --model FILE.pt img.jpg`).

Writes FILE.pt and its model card FILE.json (input size, mean/std, colour order, class names), which
cnnvis reads from beside the .pt. Run with Debian's python3 (python3-torch, python3-torchvision).

  scripts/export_torchscript.py --model resnet50 --pretrained --out models/resnet50.pt   # download
  scripts/export_torchscript.py --model mobilenet_v2 --random --seed 0 --out /tmp/mb2.pt
  scripts/export_torchscript.py --module my_net.pth --out my_net.pt --classes names.txt --size 96
  scripts/export_torchscript.py --model resnet18 --random --script --out r18.pt          # torch.jit.script

--module takes a whole model saved with torch.save(model, PATH) (its class must be importable), or a
state dict together with --model NAME (a torchvision architecture; --num-classes for a new head).
Tracing (the default) records the eval-mode graph for one input size; scripting keeps control flow.
"""

import argparse
import hashlib
import json
import os
import sys

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def imagenet_labels():
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        return None
    return list(_IMAGENET_CATEGORIES)


def torchvision_model(name, pretrained, seed, num_classes):
    import torch
    import torchvision

    builder = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder) or name.startswith("_"):
        raise SystemExit(f"error: torchvision has no classification model {name!r}")
    kwargs = {}
    if pretrained:
        kwargs["weights"] = "DEFAULT"
        source = f"torchvision {torchvision.__version__} {name} DEFAULT weights"
    else:
        torch.manual_seed(seed)
        kwargs["weights"] = None
        if num_classes:
            kwargs["num_classes"] = num_classes
        source = f"torchvision {torchvision.__version__} {name}, random init (torch.manual_seed({seed}))"
    if name in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = True
        if pretrained:
            kwargs.pop("aux_logits")  # the pretrained weights come with them; eval mode ignores them
    return builder(**kwargs), source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--pretrained", action="store_true", help="torchvision's DEFAULT weights (downloads)")
    what.add_argument("--random", action="store_true", help="seeded random weights (the default)")
    parser.add_argument("--model", help="torchvision architecture name: resnet50, mobilenet_v2, convnext_tiny, ...")
    parser.add_argument("--module", help="a model saved with torch.save(model), or a state dict for --model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=0, help="classes of a random or state-dict model")
    parser.add_argument("--size", type=int, nargs="+", default=[224], help="input side, or height width")
    parser.add_argument("--classes", help="text file with one class name per line")
    parser.add_argument("--script", action="store_true", help="torch.jit.script instead of torch.jit.trace")
    parser.add_argument("--out", required=True, help="the .pt to write; the card goes beside it as .json")
    args = parser.parse_args(argv)

    import torch

    if not args.model and not args.module:
        parser.error("give --model NAME or --module FILE")
    height, width = (args.size[0], args.size[0]) if len(args.size) == 1 else args.size[:2]
    labels = None
    if args.module:
        loaded = torch.load(args.module, map_location="cpu")
        if isinstance(loaded, torch.nn.Module):
            model, source = loaded, f"{os.path.basename(args.module)} ({type(loaded).__name__})"
        elif isinstance(loaded, dict):
            if not args.model:
                raise SystemExit(f"error: {args.module} holds a state dict; name its architecture with --model")
            model, _ = torchvision_model(args.model, False, args.seed, args.num_classes)
            model.load_state_dict(loaded)
            source = f"{os.path.basename(args.module)} loaded into torchvision {args.model}"
        else:
            raise SystemExit(f"error: {args.module} holds a {type(loaded).__name__}, not a model or a state dict")
    else:
        model, source = torchvision_model(args.model, args.pretrained, args.seed, args.num_classes)
        if args.pretrained:
            labels = imagenet_labels()
    model.eval()
    example = torch.zeros(1, 3, height, width)
    with torch.no_grad():
        logits = model(example)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise SystemExit("error: the model's output is not an [N, classes] tensor of logits")
    if args.classes:
        with open(args.classes) as f:
            labels = [line.strip() for line in f if line.strip()]
    if labels is not None and len(labels) != logits.shape[1]:
        raise SystemExit(f"error: {len(labels)} class names for {logits.shape[1]} outputs")

    scripted = torch.jit.script(model) if args.script else torch.jit.trace(model, example, check_trace=False)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    scripted.save(args.out)
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    card = {
        "name": os.path.splitext(os.path.basename(args.out))[0],
        "architecture": "torchscript",
        "input_size": [height, width],
        "channel_order": "RGB",
        "input_range": 1.0,
        "mean": MEAN,
        "std": STD,
        "weights_file": os.path.basename(args.out),
        "weights_sha256": digest,
        "source": source + (" (torch.jit.script)" if args.script else " (torch.jit.trace)"),
    }
    if labels is not None:
        card["labels"] = labels
    card_path = os.path.splitext(args.out)[0] + ".json"
    with open(card_path, "w") as f:
        json.dump(card, f, indent=2)
    print(f"wrote {args.out} and {card_path} ({logits.shape[1]} classes, input {height} x {width})")


if __name__ == "__main__":
    sys.exit(main())
