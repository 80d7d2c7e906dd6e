"""Small networks for the proxies, initialised deterministically from a seed.

``build`` first constructs a model on the ``meta`` device (no memory, no random
draws) and then fills every parameter from a private ``torch.Generator`` seeded
with ``seed``. So the same ``(kind, shapes, seed, kw)`` always yields
bit-identical parameters, whatever the global RNG state, and building never
touches the global RNG, which stays safe when several threads build models at
once (``torch.random.fork_rng`` would not be). The distributions are PyTorch's
own defaults (``reset_parameters``): Kaiming-uniform with ``a=sqrt(5)`` for
weights, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for biases, ones/zeros for norms.

Every model accepts a batch whose samples have ``input_shape`` (or the same
number of values, flattened) and returns logits ``(N, num_classes)``, except the
dense ``unet``, which returns one logit map per class, ``(N, num_classes, H, W)``.
The residual net and the U-Net use GroupNorm rather than BatchNorm: no running
statistics, so train and eval mode agree and results do not depend on the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

KINDS: dict[str, str] = {
    "mlp": "fully connected ReLU net on the flattened input; kw hidden=(128,)",
    "cnn2d": "two 3x3 convs (32, 64), max-pool, global average pool, linear; "
             "for (1, 28, 28) or flat digits viewed as (1, 8, 8); kw channels, image_shape",
    "cnn1d": "three strided 1-D convs then linear, for MNIST-1D (1, 40); kw channels=32",
    "resnet": "residual CNN for (3, 32, 32): stem + 3 GroupNorm basic blocks (16, 32, 64); kw widths, "
              "norm='group' (or 'batch': BatchNorm, whose running statistics train one at a time)",
    "unet": "dense U-Net for (C, H, W) -> (num_classes, H, W): per level two 3x3 conv-GroupNorm-"
            "ReLU, max-pool down, nearest upsampling and skip concatenation up; kw widths=(8, 16, 32)",
}


class _View(nn.Module):
    """Reshape a batch to ``(N, *shape)``, so flat samples (e.g. 64 digit pixels) reach convs as images."""

    def __init__(self, shape: tuple):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _mlp(input_shape, num_classes, hidden=(128,)):
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _image_shape(input_shape, image_shape):
    """The (C, H, W) a 2-D conv sees: explicit, already 3-D, or a flat square one-channel image."""
    if image_shape is not None:
        shape = tuple(image_shape)
    elif len(input_shape) == 3:
        shape = tuple(input_shape)
    elif len(input_shape) == 1 and math.isqrt(input_shape[0]) ** 2 == input_shape[0]:
        side = math.isqrt(input_shape[0])
        shape = (1, side, side)
    else:
        raise ValueError(f"cannot view input_shape {input_shape} as an image; pass image_shape=(C, H, W)")
    if len(shape) != 3 or math.prod(shape) != math.prod(input_shape):
        raise ValueError(f"image_shape {shape} does not match input_shape {input_shape}")
    return shape


def _cnn2d(input_shape, num_classes, channels=(32, 64), image_shape=None):
    c, _, _ = shape = _image_shape(input_shape, image_shape)
    c1, c2 = channels
    return nn.Sequential(
        _View(shape),
        nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(c2, num_classes),
    )


def _cnn1d(input_shape, num_classes, channels=32):
    if len(input_shape) == 1:
        input_shape = (1, input_shape[0])
    if len(input_shape) != 2:
        raise ValueError(f"cnn1d needs input_shape (C, L) or (L,), got {input_shape}")
    c, length = input_shape
    # (kernel, stride, padding); each stride-2 conv halves the length.
    convs = [(5, 2, 2), (3, 2, 1), (3, 2, 1)]
    layers: list[nn.Module] = [_View((c, length))]
    for k, s, p in convs:
        layers += [nn.Conv1d(c, channels, k, stride=s, padding=p), nn.ReLU()]
        c, length = channels, (length + 2 * p - k) // s + 1
    # Flatten instead of pooling: where a feature sits along the sequence matters in MNIST-1D.
    layers += [nn.Flatten(), nn.Linear(channels * length, num_classes)]
    return nn.Sequential(*layers)


def _norm(channels, norm="group"):
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm != "group":
        raise ValueError(f"unknown norm {norm!r}; use 'group' or 'batch'")
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class _BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "group"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(c_out, norm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = _norm(c_out, norm)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          _norm(c_out, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _resnet(input_shape, num_classes, widths=(16, 32, 64), image_shape=None, norm="group"):
    shape = _image_shape(input_shape, image_shape)
    layers: list[nn.Module] = [
        _View(shape),
        nn.Conv2d(shape[0], widths[0], 3, padding=1, bias=False), _norm(widths[0], norm), nn.ReLU(),
    ]
    c = widths[0]
    for i, w in enumerate(widths):
        layers.append(_BasicBlock(c, w, stride=1 if i == 0 else 2, norm=norm))
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), _norm(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), _norm(c_out), nn.ReLU())


class _UNet(nn.Module):
    """Encoder-decoder with skip connections (Ronneberger et al. 2015), GroupNorm, no BatchNorm."""

    def __init__(self, shape: tuple, num_classes: int, widths: tuple):
        super().__init__()
        self.view = _View(shape)
        chans = [shape[0], *widths]
        self.down = nn.ModuleList(_conv_block(a, b) for a, b in zip(chans, chans[1:]))
        self.up = nn.ModuleList(_conv_block(widths[i] + widths[i + 1], widths[i])
                                for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.view(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([skip, nn.functional.interpolate(x, scale_factor=2.0)], 1))
        return self.head(x)


def _unet(input_shape, num_classes, widths=(8, 16, 32), image_shape=None):
    shape = _image_shape(input_shape, image_shape)
    factor = 2 ** (len(widths) - 1)
    if len(widths) < 2 or shape[1] % factor or shape[2] % factor:
        raise ValueError(f"unet with widths {tuple(widths)} halves the image {len(widths) - 1} "
                         f"times: H and W must be multiples of {factor}, got {shape[1:]}; give "
                         f"at least two widths and an image size that divides")
    return _UNet(shape, num_classes, tuple(widths))


_BUILDERS = {"mlp": _mlp, "cnn2d": _cnn2d, "cnn1d": _cnn1d, "resnet": _resnet, "unet": _unet}


def _init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Fill every parameter with PyTorch's default distributions, drawn from ``generator``.

    Raises TypeError for a parameterised module or buffer it does not know, so a
    new layer type cannot slip through with uninitialised (meta -> empty) memory.
    """
    done: set[int] = set()
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
                done.update(id(b) for b in module.buffers(recurse=False))
        elif own:
            raise TypeError(f"no deterministic init for {type(module).__name__}")
        done.update(id(p) for p in own)
    missed = [n for n, p in model.named_parameters() if id(p) not in done]
    buffers = [n for n, b in model.named_buffers() if id(b) not in done]
    if missed or buffers:
        raise TypeError(f"uninitialised parameters {missed} / buffers {buffers}")


_PREFIXED: dict[str, Callable[..., nn.Module]] = {}


def register_builder(prefix: str, builder: Callable[..., nn.Module]) -> None:
    """Let :func:`build` hand every kind starting with ``prefix`` (e.g. ``"py:"``) to ``builder``,
    called as ``builder(kind, input_shape, num_classes, seed, **kw)``; it must decide the initial
    weights from ``seed`` alone, as the built-in kinds do."""
    _PREFIXED[prefix] = builder


def build(kind: str, input_shape: tuple, num_classes: int, seed: int, **kw) -> nn.Module:
    """Build a small classifier with parameters determined by ``seed`` alone.

    Args:
        kind: one of ``KINDS`` (``mlp``, ``cnn2d``, ``cnn1d``, ``resnet``), or a kind that a
            registered prefix claims (:func:`register_builder`), e.g. a user's model
            ``"py:pkg.mod:Net"`` / ``"factory:pkg.mod:make"`` (:mod:`gp_search.proxies.user_task`).
        input_shape: shape of one sample, e.g. ``Dataset.input_shape``.
        num_classes: number of output logits.
        seed: seeds the private generator for the initial parameters.
        **kw: kind-specific options (see ``KINDS``), e.g. ``hidden=(256, 128)``
            for ``mlp`` or ``image_shape=(1, 8, 8)`` for ``cnn2d``.

    Returns:
        The model on CPU, in training mode; move it with ``.to(device)``.

    Raises:
        ValueError: unknown kind, or shapes the kind cannot handle.
    """
    prefix = next((p for p in _PREFIXED if kind.startswith(p)), None)
    if prefix is not None:  # a user's model (gp_search.proxies.user_task registers them)
        return _PREFIXED[prefix](kind, input_shape, num_classes, seed, **kw)
    if kind not in _BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(_BUILDERS)}")
    input_shape = tuple(int(d) for d in input_shape)
    with torch.device("meta"):
        model = _BUILDERS[kind](input_shape, int(num_classes), **kw)
    model = model.to_empty(device="cpu")
    _init_parameters(model, torch.Generator(device="cpu").manual_seed(int(seed)))
    return model
