#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/fuzz_*.cpp) into <out>/<target>/.

Seeds are small valid (and a few nearly valid) inputs so that the fuzzer starts from deep inside each
parser. They are generated rather than committed. Needs Debian's python3-numpy and python3-pil (and
python3-torch for the TorchScript archives).

    /usr/bin/python3 tests/fuzz/make_seeds.py --out build-fuzz/seeds [--cards models]
"""
import argparse
import gzip
import io
import json
import os
import struct

import numpy as np
from PIL import Image


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors_seeds(out):
    f32 = np.arange(6, dtype="<f4")
    f16 = np.array([0.5, -2.0, np.inf, np.nan], dtype="<f2")
    write(f"{out}/valid_mixed", safetensors_bytes({
        "conv.weight": ("F32", [2, 3], f32.tobytes()),
        "conv.bias": ("F16", [4], f16.tobytes()),
        "bn.scale": ("BF16", [2], (np.array([1.0, -1.0], dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()),
        "bn.num_batches_tracked": ("I64", [], np.array([7], dtype="<i8").tobytes()),
        "empty": ("F32", [0, 3], b""),
    }, {"format": "pt", "source": "seed"}))
    write(f"{out}/empty_header", safetensors_bytes({}))
    write(f"{out}/one_scalar", safetensors_bytes({"x": ("F32", [], np.array([1.5], dtype="<f4").tobytes())}))
    good = safetensors_bytes({"a": ("F32", [2], f32[:2].tobytes()), "b": ("F32", [2], f32[2:4].tobytes())})
    write(f"{out}/truncated", good[:-3])
    overlap = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    write(f"{out}/overlap", struct.pack("<Q", len(overlap)) + overlap + bytes(12))


def card_seeds(out, cards_dir):
    if cards_dir and os.path.isdir(cards_dir):
        for name in sorted(os.listdir(cards_dir)):
            if name.endswith(".json"):
                with open(os.path.join(cards_dir, name), "rb") as f:
                    data = f.read()
                # Cards with 1000 labels are large; keep the start of the label list only.
                card = json.loads(data)
                card["labels"] = card.get("labels", [])[:5]
                write(f"{out}/{name}", json.dumps(card, indent=1).encode())
    write(f"{out}/minimal.json", json.dumps({"name": "m", "architecture": "vgg16"}).encode())
    write(f"{out}/full.json", json.dumps({
        "name": "tiny", "architecture": "fashion_vgg", "input_size": [64, 64], "channel_order": "RGB",
        "input_range": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "transform_input": False,
        "labels": ["cat", "dog"], "default_layer": "conv1", "weights_file": "tiny.safetensors",
        "weights_sha256": None, "ignore_weight_prefixes": ["aux."], "source": "seed"}).encode())


def manifest_seeds(out):
    write(f"{out}/manifest.json", json.dumps({
        "tool": "cnnvis", "version": "0.1.0", "command": "gradcam", "summary": {"inputs": 2, "ok": 1, "error": 1},
        "inputs": [
            {"input": "a.png", "status": "ok", "error": None, "outputs": {"heatmap": "a.gradcam.png"},
             "predictions": [{"index": 3, "label": "x", "logit": 2.5, "probability": 0.9}],
             "timings_ms": {"load": 1.0}},
            {"input": "b.png", "status": "error", "error": "b.png: empty file", "outputs": {}}]}, indent=2).encode())
    write(f"{out}/no_inputs.json", b'{"tool": "cnnvis"}')


def idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_seeds(out):
    images = (np.arange(2 * 4 * 4) % 256).reshape(2, 4, 4)
    labels = np.array([3, 9])
    write(f"{out}/images", idx_bytes(images))
    write(f"{out}/labels", idx_bytes(labels))
    write(f"{out}/images.gz", gzip.compress(idx_bytes(images), mtime=0))
    write(f"{out}/labels_two_members.gz", gzip.compress(idx_bytes(labels)[:5], mtime=0) +
          gzip.compress(idx_bytes(labels)[5:], mtime=0))


def npy_seeds(out):
    for name, array in {"f4_2d": np.arange(6, dtype="<f4").reshape(2, 3), "f8_1d": np.array([1.0, -2.0]),
                        "u1_3d": np.arange(8, dtype="u1").reshape(2, 2, 2), "i8_scalar": np.array(5, dtype="<i8")}.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        write(f"{out}/{name}", buffer.getvalue())


def image_seeds(out):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    base = Image.fromarray(rgb, "RGB")
    variants = {
        "rgb.png": (base, "PNG"), "gray.png": (base.convert("L"), "PNG"), "rgba.png": (base.convert("RGBA"), "PNG"),
        "gray_alpha.png": (base.convert("LA"), "PNG"), "palette.png": (base.convert("P"), "PNG"),
        "rgb.jpg": (base, "JPEG"), "gray.jpg": (base.convert("L"), "JPEG"), "rgb.bmp": (base, "BMP"),
        "rgb.tiff": (base, "TIFF"), "rgb.ppm": (base, "PPM"), "gray.pgm": (base.convert("L"), "PPM"),
        "rgb.gif": (base.convert("P"), "GIF"),
    }
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), "WEBP")
        variants["rgb.webp"] = (base, "WEBP")
        variants["rgba_lossless.webp"] = (base.convert("RGBA"), "WEBP")
    except (KeyError, OSError):
        pass
    for name, (image, fmt) in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        write(f"{out}/{name}", buffer.getvalue())
    buffer = io.BytesIO()
    Image.fromarray((rng.integers(0, 65536, (4, 3))).astype(np.uint16)).save(buffer, "PNG")
    write(f"{out}/gray16.png", buffer.getvalue())
    # Polyglots: OpenCV picks a decoder by signature, and DICOM's is "DICM" at byte 128; every format
    # must still reach only its own decoder.
    for name, (image, fmt) in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        data = buffer.getvalue().ljust(132, b"\0")
        write(f"{out}/dicm_{name}", data[:128] + b"DICM" + data[132:])


def atlas_samples_seeds(out):
    write(f"{out}/plain.csv", b"index,key,path,sample,x,y,predicted\n0,photos/a.jpg,/d/photos/a.jpg,0,3,4,1\n"
          b"1,photos/a.jpg,/d/photos/a.jpg,1,0,7,1\n")
    write(f"{out}/quoted.csv", b'index,key,path,sample,x,y,predicted\r\n0,"a,b ""c"".png","x\ny.png",2,1,1,-1\r\n')
    write(f"{out}/header_only.csv", b"index,key,path,sample,x,y,predicted\n")


def torchscript_archive_seeds(out):
    """A scripted and a traced small network (parameters, buffers, a tensor constant, deflated code and debug
    records), the scripted one with its first tensor record cut short and with every record stored. Skipped
    without Debian's torch."""
    try:
        import torch
    except ImportError:
        print("make_seeds: no torch for /usr/bin/python3, no torchscript_archive seeds")
        return
    import copy
    import warnings
    import zipfile
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2, 3)).eval()
    os.makedirs(out, exist_ok=True)
    torch.jit.script(net).save(f"{out}/scripted.pt")

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x) * torch.tensor([1.0, 2.0, 3.0])  # a tensor constant: constants.pkl, constants/0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's note on torch.tensor becoming a constant
        torch.jit.trace(Scaled(), torch.rand(1, 3, 8, 8), check_trace=False).save(f"{out}/traced.pt")
    with zipfile.ZipFile(f"{out}/scripted.pt") as zin, zipfile.ZipFile(f"{out}/cut_record.pt", "w") as zout, \
            zipfile.ZipFile(f"{out}/stored.pt", "w") as stored:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(copy.copy(info), data[:len(data) // 2] if info.filename.endswith("/data/0") else data)
            info = copy.copy(info)  # writestr fills in the ZipInfo it is given: one each
            info.compress_type = zipfile.ZIP_STORED  # every pickle record open to the fuzzer's mutations
            stored.writestr(info, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--cards", default=None, help="directory of model cards to include")
    args = parser.parse_args()
    safetensors_seeds(f"{args.out}/safetensors")
    card_seeds(f"{args.out}/model_card", args.cards)
    manifest_seeds(f"{args.out}/manifest")
    idx_seeds(f"{args.out}/idx")
    npy_seeds(f"{args.out}/npy")
    image_seeds(f"{args.out}/image")
    atlas_samples_seeds(f"{args.out}/atlas_samples")
    torchscript_archive_seeds(f"{args.out}/torchscript_archive")


if __name__ == "__main__":
    main()
