"""Built-in example models for the demo: no downloads, deterministic weights."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    """A 3-layer MLP classifier on 256 features."""

    def __init__(self, features=256, hidden=512, classes=10):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(features, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.gelu(self.fc1(x))
        x = F.silu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=-1)


class SmallCNN(nn.Module):
    """Two conv/batch-norm/relu stages, max pooling, global average pooling, a linear head."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.pool, self.gap = nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(32, classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return self.head(torch.flatten(self.gap(x), 1))


def build(name):
    torch.manual_seed(0)
    model = {"mlp": MLP, "cnn": SmallCNN}[name]().eval()
    for module in model.modules():  # non-trivial running statistics, so batch norm is really tested
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    return model
