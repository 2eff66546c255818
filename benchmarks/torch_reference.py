"""The PyTorch eager reference the benchmarks race: VGGish and the compact CNN, layer for
layer as encoders/vggish.py and encoders/compact.py, with the same 11-way softmax head, loss
and Adam. Optional: `pip install torch==2.13.0` (the CPU build); absent, the benchmarks say so."""

from __future__ import annotations

import numpy as np


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def build(name: str):
    import torch
    from torch import nn

    def conv(cin, cout, bias=True):
        return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)

    if name == "vggish":
        features = nn.Sequential(
            conv(1, 64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            conv(64, 128),
            nn.ReLU(),
            nn.MaxPool2d(2),
            conv(128, 256),
            nn.ReLU(),
            conv(256, 256),
            nn.ReLU(),
            nn.MaxPool2d(2),
            conv(256, 512),
            nn.ReLU(),
            conv(512, 512),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, 128),
        )
    elif name == "compact":
        widths, layers, cin = (32, 64, 128, 256, 256), [], 1
        for i, width in enumerate(widths):
            layers += [conv(cin, width, bias=False), nn.BatchNorm2d(width, momentum=0.1), nn.ReLU()]
            layers += [nn.MaxPool2d(2, ceil_mode=True)] if i < len(widths) - 1 else []
            cin = width

        class Compact(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.Sequential(*layers)
                self.project = nn.Linear(2 * widths[-1], 128)

            def forward(self, x):
                x = self.blocks(x)
                return self.project(torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1))

        features = Compact()
    else:
        raise KeyError(f"no PyTorch reference for encoder {name!r}")
    return features


class Reference:
    """`train_step()` and `embed()` on a fixed batch of (B, 96, 64) patches, as our JAX steps."""

    def __init__(self, name: str, batch_size: int, seed: int = 0):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.torch = torch
        self.encoder = build(name)
        self.model = nn.Sequential(self.encoder, nn.Linear(128, 11))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.x = torch.from_numpy(rng.standard_normal((batch_size, 1, 96, 64)).astype(np.float32))
        self.y = torch.from_numpy(rng.integers(0, 11, batch_size))

    def train_step(self) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def embed(self):
        self.encoder.eval()
        with self.torch.inference_mode():
            return self.encoder(self.x)
