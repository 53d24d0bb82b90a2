"""
torch_models.py — the PyTorch definitions whose numbers resnet.c matches, written exactly as
the originals so that state_dict key names, order, shapes and initialization agree:

  (a) akamaster/pytorch_resnet_cifar10 (resnet.py): resnet20/32/44/56/110/1202, BasicBlock with
      the option-A shortcut (stride-2 subsampling + zero channel padding, no parameters);
      plain20/32/44/56/110/1202 are the same networks without the shortcut add.
  (b) kuangliu/pytorch-cifar (models/resnet.py): ResNet18/34/50/101/152 for 32x32 inputs
      (3x3 stem, no max pool, projection shortcut named `shortcut`, classifier `linear`).
  (c) torchvision.models.resnet18..152 (python3-torchvision; weights=None).

Run under /usr/bin/python3 (Debian's python3-torch). `python3 tools/torch_models.py` prints
every model's parameter count and asserts the published ones.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init

# ---------------------------------------------------------------------------------------------
# (a) akamaster/pytorch_resnet_cifar10
# ---------------------------------------------------------------------------------------------


def _weights_init(m):
    if isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super(LambdaLayer, self).__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class AkaBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option="A", residual=True):
        super(AkaBasicBlock, self).__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                # For CIFAR10 ResNet paper uses option A.
                self.shortcut = LambdaLayer(lambda x:
                                            F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4),
                                                  "constant", 0))
            elif option == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes)
                )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out += self.shortcut(x)
        out = F.relu(out)
        return out


class AkaResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, residual=True):
        super(AkaResNet, self).__init__()
        self.in_planes = 16

        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1, residual=residual)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2, residual=residual)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2, residual=residual)
        self.linear = nn.Linear(64, num_classes)

        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride, residual):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride, residual=residual))
            self.in_planes = planes * block.expansion

        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


_AKA_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}


def aka_resnet(depth, num_classes=10, residual=True):
    n = _AKA_DEPTHS[depth]
    return AkaResNet(AkaBasicBlock, [n, n, n], num_classes=num_classes, residual=residual)


# ---------------------------------------------------------------------------------------------
# (b) kuangliu/pytorch-cifar
# ---------------------------------------------------------------------------------------------


class KlBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(KlBasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class KlBottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1):
        super(KlBottleneck, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion * planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion * planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class KlResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super(KlResNet, self).__init__()
        self.in_planes = 64

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4)  # global for 32x32 inputs (layer4 is 4x4)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


_KL_CONFIGS = {
    18: (KlBasicBlock, [2, 2, 2, 2]),
    34: (KlBasicBlock, [3, 4, 6, 3]),
    50: (KlBottleneck, [3, 4, 6, 3]),
    101: (KlBottleneck, [3, 4, 23, 3]),
    152: (KlBottleneck, [3, 8, 36, 3]),
}


def kl_resnet(depth, num_classes=10):
    block, blocks = _KL_CONFIGS[depth]
    return KlResNet(block, blocks, num_classes=num_classes)


# ---------------------------------------------------------------------------------------------
# (c) torchvision
# ---------------------------------------------------------------------------------------------


def tv_resnet(depth, num_classes=1000):
    import torchvision.models as tvm
    return getattr(tvm, f"resnet{depth}")(weights=None, num_classes=num_classes)


# ---------------------------------------------------------------------------------------------
# Names as resnet.c spells them
# ---------------------------------------------------------------------------------------------


def build(name, num_classes=None):
    """resnetD / plainD (akamaster, D in 20..1202), resnetD (kuangliu, D in 18..152, CIFAR),
    resnetD-imagenet (torchvision)."""
    if name.endswith("-imagenet"):
        depth = int(name[len("resnet"):-len("-imagenet")])
        return tv_resnet(depth, num_classes or 1000)
    if name.startswith("plain"):
        return aka_resnet(int(name[len("plain"):]), num_classes or 10, residual=False)
    depth = int(name[len("resnet"):])
    if depth in _AKA_DEPTHS:
        return aka_resnet(depth, num_classes or 10)
    return kl_resnet(depth, num_classes or 10)


def randomize_bn(model, generator):
    """Gives every BatchNorm2d of model a non-trivial state drawn from generator (running mean
    and variance, weight and bias), so that eval mode and the affine parameters are really
    tested by the references made from it."""
    g = generator
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                C = mod.num_features
                mod.running_mean.copy_(0.1 * torch.randn(C, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(C, generator=g))
                mod.weight.copy_(0.75 + 0.5 * torch.rand(C, generator=g))
                mod.bias.copy_(0.1 * torch.randn(C, generator=g))


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# Published parameter counts (akamaster README, kuangliu, torchvision docs).
EXPECTED_PARAMS = {
    "resnet20": 269_722,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet18": 11_173_962,
    "resnet18-imagenet": 11_689_512,
    "resnet50-imagenet": 25_557_032,
}


def check_param_counts():
    for name, want in EXPECTED_PARAMS.items():
        got = param_count(build(name))
        assert got == want, f"{name}: {got} parameters, expected {want}"


if __name__ == "__main__":
    names = ([f"resnet{d}" for d in _AKA_DEPTHS] + [f"plain{d}" for d in _AKA_DEPTHS] +
             [f"resnet{d}" for d in _KL_CONFIGS] + [f"resnet{d}-imagenet" for d in _KL_CONFIGS])
    for name in names:
        m = build(name)
        print(f"{name:20s} {param_count(m):>12,d} params, {len(m.state_dict()):4d} state tensors")
    check_param_counts()
    print("parameter counts match")
