#!/usr/bin/python3
"""Writes the hostile and unusual inputs of tests/cli/bad_input_test.sh.

    make_bad_inputs.py images DIR          images: good odd formats and broken ones
    make_bad_inputs.py weights GOOD DIR    weight-file variants derived from a good .safetensors
    make_bad_inputs.py idx DIR             broken Fashion-MNIST directories

Needs Debian's python3-numpy and python3-pil; writes nothing large (the decompression bomb is ~200 KB).
"""
import gzip
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def save(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width, height):
    """A valid 8-bit grayscale PNG of width x height zero pixels, compressed ~1000:1."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0 + zero pixels
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) +
            png_chunk(b"IEND", b""))


def images(out):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8), "RGB")

    def encoded(image, fmt, **kw):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kw)
        return buffer.getvalue()

    # Unusual but valid: every command must accept these.
    good = {
        "good_rgb.png": encoded(rgb, "PNG"),
        "good_gray.png": encoded(rgb.convert("L"), "PNG"),
        "good_gray_alpha.png": encoded(rgb.convert("LA"), "PNG"),
        "good_rgba.png": encoded(rgb.convert("RGBA"), "PNG"),
        "good_palette.png": encoded(rgb.convert("P"), "PNG"),
        "good_gray16.png": encoded(Image.fromarray(rng.integers(0, 65536, (70, 50)).astype(np.uint16)), "PNG"),
        "good_gray.jpg": encoded(rgb.convert("L"), "JPEG"),
        "good_cmyk.jpg": encoded(rgb.convert("CMYK"), "JPEG"),
        "good_rgb.bmp": encoded(rgb, "BMP"),
        "good_rgb.tiff": encoded(rgb, "TIFF"),
        "good_tiny.png": encoded(rgb.resize((1, 1)), "PNG"),
    }
    for name, data in good.items():
        save(f"{out}/good/{name}", data)
    jpeg = encoded(rgb, "JPEG")
    png = good["good_rgb.png"]
    bad = {
        "empty.png": b"",
        "text.png": b"this is not an image\n",
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        # A valid signature and header chunk, then junk where the image data should be.
        "garbage_after_header.png": png[:33] + bytes(range(256)) * 4,
        # 16000 x 12000 = 192 M pixels: over the default limit of 178,956,970 (Pillow's), ~200 KB on disk.
        "bomb.png": bomb_png(16000, 12000),
        "zero_size.png": png[:16] + struct.pack(">II", 0, 0) + png[24:],
    }
    for name, data in bad.items():
        save(f"{out}/bad/{name}", data)


def read_safetensors(path):
    """name -> [dtype, shape, raw bytes] in file order, and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    body = data[8 + n :]
    tensors = {k: [v["dtype"], v["shape"], body[v["data_offsets"][0] : v["data_offsets"][1]]] for k, v in header.items()}
    return tensors, meta


def safetensors_bytes(tensors, meta):
    header, offset = {}, 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, raw in tensors.values())


def weights(good, out):
    tensors, meta = read_safetensors(good)
    conv = next(k for k, (dtype, shape, _) in tensors.items() if dtype == "F32" and len(shape) == 4)
    dtype, shape, raw = tensors[conv]
    values = np.frombuffer(raw, dtype="<f4")

    def variant(name, edit):
        t = {k: list(v) for k, v in tensors.items()}
        edit(t)
        save(f"{out}/{name}.safetensors", safetensors_bytes(t, meta))

    def rename(t):
        t[conv + "_renamed"] = t.pop(conv)
    variant("renamed", rename)
    variant("missing", lambda t: t.pop(conv))
    # The same values under a transposed shape: sizes agree, the model's shape does not.
    variant("wrong_shape", lambda t: t[conv].__setitem__(1, [shape[1], shape[0]] + shape[2:]))
    # float64 is valid safetensors, but not a dtype cnnvis reads.
    variant("wrong_dtype_f64", lambda t: t.__setitem__(conv, ["F64", shape, values.astype("<f8").tobytes()]))
    # int64 of the right shape where the model has a float parameter.
    variant("wrong_dtype_i64", lambda t: t.__setitem__(conv, ["I64", shape, values.astype("<i8").tobytes()]))

    def poison(value):
        def edit(t):
            v = values.copy()
            v[3] = value
            t[conv][2] = v.tobytes()
        return edit
    variant("nan", poison(float("nan")))
    variant("inf", poison(float("-inf")))
    with open(good, "rb") as f:
        data = f.read()
    save(f"{out}/truncated.safetensors", data[: len(data) - 1000])
    save(f"{out}/empty.safetensors", b"")
    save(f"{out}/header_too_long.safetensors", struct.pack("<Q", 1 << 40) + data[8:1000])
    save(f"{out}/not_json.safetensors", struct.pack("<Q", 16) + b"this is not json" + bytes(64))
    past_end = json.dumps({"x": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode().ljust(64)
    save(f"{out}/offsets_past_end.safetensors", struct.pack("<Q", len(past_end)) + past_end + bytes(40))


def idx(out):
    def idx_bytes(dims, values):
        return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(values)

    # Random pixels, so that the gzip stream is long enough to cut in the middle.
    images = idx_bytes([20, 28, 28], np.random.default_rng(2).integers(0, 256, 20 * 28 * 28).tolist())
    labels = idx_bytes([20], [1] * 20)
    variants = {
        "empty_images": {"images": b"", "labels": gzip.compress(labels)},
        "truncated_gzip": {"images": gzip.compress(images)[:-100], "labels": gzip.compress(labels)},
        "bad_magic": {"images": gzip.compress(b"\x01\x02\x03\x04" + images[4:]), "labels": gzip.compress(labels)},
        "count_mismatch": {"images": gzip.compress(images), "labels": gzip.compress(idx_bytes([19], [1] * 19))},
        "wrong_size": {"images": gzip.compress(idx_bytes([20, 27, 28], [0] * (20 * 27 * 28))),
                       "labels": gzip.compress(labels)},
        "label_out_of_range": {"images": gzip.compress(images), "labels": gzip.compress(idx_bytes([20], [10] * 20))},
    }
    for name, files in variants.items():
        for split in ("train", "t10k"):
            save(f"{out}/{name}/{split}-images-idx3-ubyte.gz", files["images"])
            save(f"{out}/{name}/{split}-labels-idx1-ubyte.gz", files["labels"])


def main():
    kind = sys.argv[1]
    if kind == "images":
        images(sys.argv[2])
    elif kind == "weights":
        weights(sys.argv[2], sys.argv[3])
    elif kind == "idx":
        idx(sys.argv[2])
    else:
        sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
