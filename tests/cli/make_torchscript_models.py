#!/usr/bin/python3
"""Small TorchScript models for tests/cli/torchscript_test.sh: the good ones through the exporter, and the
ones cnnvis must refuse with a clear message (tuple and dict outputs, two inputs, 1-D output, a state dict, a traced-away
identity, zips with an altered pickle, constants, version or code record, a tensor record cut short or missing, a
tensor viewing past its storage)."""
import os
import random
import re
import subprocess
import sys
import zipfile

import torch

out = sys.argv[1]
src = sys.argv[2]
os.makedirs(out, exist_ok=True)
exporter = [sys.executable, os.path.join(src, "scripts", "export_torchscript.py")]
subprocess.check_call(exporter + ["--model", "resnet18", "--random", "--seed", "1", "--num-classes", "10",
                                  "--size", "64", "--out", os.path.join(out, "r18.pt")])
subprocess.check_call(exporter + ["--model", "mobilenet_v3_small", "--random", "--seed", "2", "--num-classes", "5",
                                  "--size", "64", "--script", "--out", os.path.join(out, "mb3.pt")])


class TupleOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x).mean((2, 3))
        return y, y


class TwoInputs(torch.nn.Module):
    def forward(self, x, y):
        return (x + y).mean((2, 3))


class FlatOut(torch.nn.Module):
    def forward(self, x):
        return x.flatten()


torch.jit.script(TupleOut()).save(os.path.join(out, "tuple.pt"))
torch.jit.script(TwoInputs()).save(os.path.join(out, "two_inputs.pt"))
torch.jit.script(FlatOut()).save(os.path.join(out, "flat.pt"))
torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), os.path.join(out, "state_dict.pth"))


class WithIdentity(torch.nn.Module):
    """Traced, `ident` records no node (an identity), so it has no output; eval-mode `drop` stays (aten::dropout)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.ident = torch.nn.Identity()
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        x = self.ident(torch.relu(self.conv(x)))
        return self.fc(self.drop(x.mean((2, 3))))


class DictOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return {"logits": self.conv(x).mean((2, 3))}


torch.jit.trace(WithIdentity().eval(), torch.rand(1, 3, 32, 32)).save(os.path.join(out, "identity.pt"))
torch.jit.script(DictOut()).save(os.path.join(out, "dict.pt"))

# Valid zips with one record altered (CRCs right, so only the readers of the records can tell).
small = os.path.join(out, "tuple.pt")


def altered(name, change):
    with zipfile.ZipFile(small) as zin, zipfile.ZipFile(os.path.join(out, name), "w") as zout:
        for info in zin.infolist():
            data = change(info.filename.split("/", 1)[1], zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)


rng = random.Random(0)
altered("pkl_random.pt", lambda n, d: bytes(rng.randrange(256) for _ in d) if n == "data.pkl" else d)
altered("pkl_truncated.pt", lambda n, d: d[:len(d) // 2] if n == "data.pkl" else d)
# The first memo store (BINPUT 0) as LONG_BINPUT 4294967294: LibTorch's unpickler would grow its memo table
# to that size (tens of GB, the process killed).
altered("pkl_memo.pt", lambda n, d: d.replace(b"q\x00", b"r\xfe\xff\xff\xff", 1) if n == "data.pkl" else d)
altered("constants_random.pt", lambda n, d: bytes(rng.randrange(256) for _ in range(len(d) + 30))
        if n == "constants.pkl" else d)
# Tensor records cut to half their size, or gone: LibTorch would make a storage of the size data.pkl states
# over the shorter record and read past its end.
altered("record_short.pt", lambda n, d: d[:len(d) // 2] if n == "data/0" else d)
altered("record_missing.pt", lambda n, d: None if n == "data/1" else d)
# The weight's storage offset 0 (BININT1 after the storage's persistent id and its memo store) made 1: the
# view of 4 x 3 x 3 x 3 elements from offset 1 ends one past the storage, which LibTorch does not check.
altered("view_offset.pt", lambda n, d: re.sub(rb"(Qq.)K\x00", lambda m: m.group(1) + b"K\x01", d, count=1,
                                              flags=re.S) if n == "data.pkl" else d)
altered("version99.pt", lambda n, d: b"99\n" if n == "version" else d)
altered("no_version.pt", lambda n, d: None if n == "version" else d)
altered("no_code.pt", lambda n, d: None if n.startswith("code/") else d)
