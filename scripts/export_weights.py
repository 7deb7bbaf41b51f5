#!/usr/bin/python3
"""Export torchvision VGG16 / GoogLeNet weights for cnnvis.

Writes <out>/<name>.safetensors (written here, no safetensors package needed) and the model card
<out>/<name>.json that the C++ side reads. Run with Debian's python3 (python3-torch, python3-torchvision).

  scripts/export_weights.py --model vgg16 --pretrained            # torchvision DEFAULT weights (download)
  scripts/export_weights.py --model googlenet --random --seed 0   # seeded random init, no network
  scripts/export_weights.py --model vgg16 --card-only             # template card models/vgg16.json
"""

import argparse
import hashlib
import json
import os
import struct
import sys
from collections import OrderedDict

ARCHITECTURES = ("vgg16", "googlenet")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
DEFAULT_LAYER = {"vgg16": "features.29", "googlenet": "inception5b"}
IGNORE_PREFIXES = {"vgg16": [], "googlenet": ["aux1.", "aux2."]}
TEMPLATE_SOURCE = "template: run scripts/export_weights.py to create the weights"


def imagenet_labels():
    """The 1000 ImageNet class names torchvision's weights use, in output order."""
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError as error:  # the private module moved: better to stop than to write wrong labels
        raise SystemExit(f"error: cannot import torchvision.models._meta._IMAGENET_CATEGORIES ({error})")
    labels = list(_IMAGENET_CATEGORIES)
    if len(labels) != 1000:
        raise SystemExit(f"error: expected 1000 ImageNet categories, torchvision has {len(labels)}")
    return labels


def build_model(arch, pretrained=False, seed=0, transform_input=None):
    """Returns (model in eval mode, transform_input, source text).

    Random models: torch.manual_seed(seed), then torchvision's own initialisation. GoogLeNet is built
    without aux heads; transform_input defaults to False for random and True for pretrained weights
    (torchvision's pretrained GoogLeNet expects it)."""
    import torch
    import torchvision

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}")
    version = torchvision.__version__
    if pretrained:
        weights_enum = {"vgg16": torchvision.models.VGG16_Weights,
                        "googlenet": torchvision.models.GoogLeNet_Weights}[arch].DEFAULT
        kwargs = {}
        if arch == "googlenet":
            transform_input = True if transform_input is None else transform_input
            kwargs["transform_input"] = transform_input
        else:
            transform_input = False
        try:
            model = getattr(torchvision.models, arch)(weights=weights_enum, **kwargs)
        except Exception as error:  # urllib errors, HTTP errors, truncated downloads, hash mismatches
            raise SystemExit(
                f"error: could not download torchvision's pretrained {arch} weights ({type(error).__name__}: "
                f"{error}). This needs internet access; without it use --random --seed N, or put the "
                f"checkpoint into torch's hub cache ({torch.hub.get_dir()}/checkpoints).")
        source = f"torchvision {version} pretrained {weights_enum.name}"
    else:
        torch.manual_seed(seed)
        if arch == "googlenet":
            transform_input = False if transform_input is None else transform_input
            model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True,
                                                 transform_input=transform_input)
        else:
            transform_input = False
            model = torchvision.models.vgg16(weights=None)
        source = f"torchvision {version} random init, torch.manual_seed({seed})"
    if arch == "googlenet":
        source += f", transform_input={transform_input}"
    model.eval()
    return model, transform_input, source


def export_state_dict(model, arch):
    """state_dict in order, without GoogLeNet's aux heads (the native model has none)."""
    prefixes = tuple(IGNORE_PREFIXES[arch])
    state = OrderedDict()
    for key, tensor in model.state_dict().items():
        if prefixes and key.startswith(prefixes):
            continue
        state[key] = tensor
    return state


def write_safetensors(path, tensors, metadata):
    """Writes a safetensors file: u64 little-endian header size, JSON header, then the raw tensors.

    Float tensors are stored as F32, int64 ones (BatchNorm's num_batches_tracked) as I64, both
    little-endian and contiguous, in the given order. Written to a temporary file and renamed so a
    failed export never leaves a half-written file under the final name."""
    import numpy as np
    import torch

    header = OrderedDict()
    header["__metadata__"] = OrderedDict((str(k), str(v)) for k, v in metadata.items())
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            dtype, array = "F32", tensor.to(torch.float32).contiguous().numpy().astype("<f4", copy=False)
        elif tensor.dtype == torch.int64:
            dtype, array = "I64", tensor.contiguous().numpy().astype("<i8", copy=False)
        else:
            raise ValueError(f"{name}: unsupported dtype {tensor.dtype}")
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keeps the data 8-byte aligned

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "wb") as out:
        out.write(struct.pack("<Q", len(header_bytes)))
        out.write(header_bytes)
        for data in blobs:
            out.write(data)
    os.replace(temporary, path)


def read_safetensors(path):
    """Reads a file written by write_safetensors back into numpy arrays (for self-checks)."""
    import numpy as np

    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length).decode("utf-8"))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "I64": "<i8"}
    arrays = OrderedDict()
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arrays[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return arrays, metadata


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_card(arch, transform_input, source, weights_sha256=None, name=None):
    """The model card, in the schema of include/cnnvis/io/model_card.h."""
    name = name or arch
    return OrderedDict([
        ("name", name),
        ("architecture", arch),
        ("input_size", [224, 224]),
        ("channel_order", "RGB"),
        ("input_range", 1.0),
        ("mean", MEAN),
        ("std", STD),
        ("transform_input", bool(transform_input)),
        ("labels", imagenet_labels()),
        ("default_layer", DEFAULT_LAYER[arch]),
        ("weights_file", f"{name}.safetensors"),
        ("weights_sha256", weights_sha256),
        ("ignore_weight_prefixes", IGNORE_PREFIXES[arch]),
        ("source", source),
    ])


def write_card(card, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(card, out, indent=2, ensure_ascii=False)
        out.write("\n")
    os.replace(temporary, path)


def export_model(model, arch, transform_input, source, out_dir, name=None):
    """Writes <out_dir>/<name>.safetensors and <out_dir>/<name>.json; returns (weights, card path, card)."""
    name = name or arch
    weights_path = os.path.join(out_dir, f"{name}.safetensors")
    card_path = os.path.join(out_dir, f"{name}.json")
    write_safetensors(weights_path, export_state_dict(model, arch),
                      {"format": "pt", "source": source, "architecture": arch})
    card = make_card(arch, transform_input, source, sha256_file(weights_path), name)
    write_card(card, card_path)
    return weights_path, card_path, card


def template_card(arch):
    # Templates describe the pretrained setup, so GoogLeNet's says transform_input: true.
    return make_card(arch, arch == "googlenet", TEMPLATE_SOURCE, None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=ARCHITECTURES)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--pretrained", action="store_true", help="torchvision's DEFAULT weights (downloads)")
    mode.add_argument("--random", action="store_true", help="seeded random initialisation (needs --seed)")
    mode.add_argument("--card-only", action="store_true", help="write only the template model card")
    parser.add_argument("--seed", type=int, help="seed for --random")
    parser.add_argument("--out", default="models", help="output directory (default: models/)")
    args = parser.parse_args(argv)

    if args.card_only:
        if args.seed is not None:
            parser.error("--seed only goes with --random")
        path = os.path.join(args.out, f"{args.model}.json")
        write_card(template_card(args.model), path)
        print(f"wrote {path} (template card, no weights)")
        return 0
    if not (args.pretrained or args.random):
        parser.error("one of --pretrained, --random --seed N or --card-only is required")
    if args.random and args.seed is None:
        parser.error("--random needs --seed N")
    if args.pretrained and args.seed is not None:
        parser.error("--seed only goes with --random")

    model, transform_input, source = build_model(args.model, pretrained=args.pretrained,
                                                 seed=args.seed if args.random else 0)
    weights_path, card_path, card = export_model(model, args.model, transform_input, source, args.out)
    size_mb = os.path.getsize(weights_path) / 1e6
    print(f"wrote {weights_path} ({size_mb:.1f} MB, sha256 {card['weights_sha256']})")
    print(f"wrote {card_path} ({source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
