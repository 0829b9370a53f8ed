"""Small models shared by the compiler tests."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self, width=32):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(16, width), nn.Linear(width, width), nn.Linear(width, 10)

    def forward(self, x):
        return torch.softmax(self.fc3(F.silu(self.fc2(F.gelu(self.fc1(x))))), dim=-1)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.pool, self.gap = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(torch.flatten(self.gap(x), 1))


@torch.library.custom_op("trtx_tests::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    """An op no converter will ever exist for (coverage grows; this must stay unsupported)."""
    return torch.cumsum(x, dim=-1)


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


class WithUnsupportedOp(nn.Module):
    """`mystery` has no converter: the graph must split into TensorRT + PyTorch + TensorRT."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.a(x)) * 2
        x = mystery(x)
        return torch.sigmoid(self.b(x)) + 1
