"""FedProx's local objective computed directly in PyTorch, for
fedprox_reference_test.cc: `epochs` full-batch SGD steps on
cross_entropy(mlp(x), y) + mu / 2 * sum ||w - w0||^2 from the weights w0.

Usage: fedprox_reference.py IN.safetensors OUT.safetensors MU LR EPOCHS
IN holds the MLP's layers.<i>.weight / .bias (Braid's layout), x (float32
[n, features]) and y (int64 [n]); OUT gets the weights after training.
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def main():
    tensors = load_file(sys.argv[1])
    mu, lr, epochs = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    x, y = tensors.pop("x"), tensors.pop("y")
    names = sorted(tensors, key=lambda n: (int(n.split(".")[1]), n.split(".")[2] != "weight"))
    params = [tensors[n].clone().requires_grad_(True) for n in names]
    anchors = [tensors[n].clone() for n in names]
    layers = len(params) // 2
    optimizer = torch.optim.SGD(params, lr=lr)
    for _ in range(epochs):
        h = x
        for i in range(layers):
            h = F.linear(h, params[2 * i], params[2 * i + 1])
            if i + 1 < layers:
                h = torch.relu(h)
        loss = F.cross_entropy(h, y)
        proximal = sum(((p - a) ** 2).sum() for p, a in zip(params, anchors))
        optimizer.zero_grad()
        (loss + mu / 2 * proximal).backward()
        optimizer.step()
    save_file({n: p.detach().contiguous() for n, p in zip(names, params)}, sys.argv[2])


if __name__ == "__main__":
    main()
