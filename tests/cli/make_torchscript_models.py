#!/usr/bin/python3
"""Small TorchScript models for tests/cli/torchscript_test.sh: the good ones through the exporter, and the
ones cnnvis must refuse with a clear message (tuple output, two inputs, 1-D output, a state dict)."""
import os
import subprocess
import sys

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
