"""The image decoder's transforms on the CPU as plain matrix products: compressai's synthesis g_s and
hyper-synthesis h_s about twice as fast as torch's native convolutions, with no column buffers, and the
same for any thread count.

A stride-2 5x5 transposed convolution (compressai's ``deconv``: padding 2, output padding 1) makes output
pixel (2i + a, 2j + b) from inputs (i + d, j + e), d and e in {-1, 0, 1}, through kernel tap
(a + 2 - 2d, b + 2 - 2e) where that lies in the kernel: 9, 6, 6 and 4 taps for the four phases (a, b), 25
in all, the multiply-adds of the transposed convolution without its column buffer (~700 MB for a
1024-pixel tile) and its col2im. A stride-1 3x3 convolution (padding 1) is one phase of 9 taps. The input
is zero-padded and flattened row by row, so the input shifted by (d, e) is the flat input at an offset of
d (W + 2) + e: a strided view that a GEMM reads in place. The two pad columns of every row give outputs
that are dropped. The work goes in bands of a few input rows, in parallel, so that a band's input and
output stay in a core's cache, and an inverse GDN after a convolution (pointwise in space) is applied to a
band while it is there.

Determinism: each output is the bias plus the taps' products accumulated in a fixed order, and each
product sums over the input channels alone, a reduction BLAS keeps on one thread for these shapes: the
output is the same for any thread count (tested), as the native path's is (``determinism``). It differs
from torch's convolutions in the last bits (another order of additions), which FORMAT.md 7 allows.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from compressai.layers import GDN
from torch import nn

from mcodec.codec.determinism import map_single_threaded

BAND_COLUMNS = 2048  # outputs per GEMM of a band: [Cin, 2048] float32 is 0.8 MB at Cin = 96, an L2's worth
# Fewer output channels (g_s's last layer, 3): torch's own layer, whose one GEMM of every tap at once is as
# fast as 25 GEMMs of 3 rows or one stacked GEMM with shifted sums (0.15 s for a 1024-pixel tile)
MIN_CHANNELS = 8
Taps = list[tuple[int, int, torch.Tensor]]  # (d, e, W [Cout, Cin]): input (i + d, j + e) through W


def _deconv_phases(w: torch.Tensor) -> list[Taps]:
    """A ``deconv`` weight [Cin, Cout, 5, 5] -> the taps of phases (0, 0), (0, 1), (1, 0), (1, 1)."""
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            taps = []
            for d in (-1, 0, 1):
                for e in (-1, 0, 1):
                    ki, kj = a + 2 - 2 * d, b + 2 - 2 * e
                    if ki < 5 and kj < 5:
                        taps.append((d, e, w[:, :, ki, kj].t().contiguous()))
            phases.append(taps)
    return phases


def _conv_phases(w: torch.Tensor) -> list[Taps]:
    """A 3x3 convolution's weight [Cout, Cin, 3, 3] -> its one phase."""
    return [[(d, e, w[:, :, d + 1, e + 1].contiguous()) for d in (-1, 0, 1) for e in (-1, 0, 1)]]


def _is_deconv(layer: nn.Module) -> bool:
    return (
        type(layer) is nn.ConvTranspose2d
        and (layer.kernel_size, layer.stride, layer.padding) == ((5, 5), (2, 2), (2, 2))
        and (layer.output_padding, layer.dilation, layer.groups) == ((1, 1), (1, 1), 1)
        and layer.out_channels >= MIN_CHANNELS
    )


def _is_conv3(layer: nn.Module) -> bool:
    return (
        type(layer) is nn.Conv2d
        and (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (1, 1), (1, 1))
        and (layer.dilation, layer.groups, layer.padding_mode) == ((1, 1), 1, "zeros")
        and layer.out_channels >= MIN_CHANNELS
    )


def _is_inverse_gdn(layer: nn.Module) -> bool:
    return type(layer) is GDN and layer.inverse


# layer -> (the stamp of its tensors and its GDN's, its layout, those tensors): re-laying a transform's
# weights out took ~15 ms of a 320x240 picture's ~150 ms decoding (a video's key pictures decode the same
# layers again and again); a layer whose tensors change (training, .to(), .double()) gets a new stamp and a
# new layout
_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _layout(layer: nn.Module, gdn: GDN | None) -> tuple[list[Taps], torch.Tensor, tuple | None]:
    """(its phases' taps, its bias [Cout, 1], the GDN's (beta [Cout, 1], gamma [Cout, Cout]) or None)."""
    tensors = [layer.weight, layer.bias, *((gdn.beta, gdn.gamma) if gdn is not None else ())]
    stamp = (id(gdn), *((t.data_ptr(), t._version, t.dtype) for t in tensors if t is not None))
    cached = _LAYOUTS.get(layer)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    w = layer.weight.detach()
    phases = _deconv_phases(w) if isinstance(layer, nn.ConvTranspose2d) else _conv_phases(w)
    cout = phases[0][0][2].shape[0]
    bias = layer.bias.detach() if layer.bias is not None else w.new_zeros(cout)
    terms = None
    if gdn is not None:  # compressai's GDN.forward: x * sqrt(beta + gamma @ x^2), reparametrized
        c = gdn.beta.shape[0]
        beta = gdn.beta_reparam(gdn.beta).detach().to(w.dtype)
        gamma = gdn.gamma_reparam(gdn.gamma).detach().to(w.dtype).reshape(c, c)
        terms = (beta[:, None], gamma)
    layout = (phases, bias[:, None], terms)
    # the stamped tensors are kept alive, so that no new tensor of this layer can take their addresses
    _LAYOUTS[layer] = (stamp, layout, [t.detach() for t in tensors if t is not None])
    return layout


class ShiftedGemms:
    """A ``deconv`` or 3x3 convolution layer, optionally followed by an inverse GDN, as banded GEMMs:
    [1, Cin, h, w] -> [1, Cout, s h, s w] (s = the stride), in the layer's dtype, no autograd. One call at a
    time.

    ``reuse_output``: the output is a buffer that the next call of the same shape overwrites (for a layer
    inside a transform, whose output the next layer consumes at once): a fresh 100 MB tensor per tile costs
    its page faults again, as would the zero-padded copy of the input, which is always reused."""

    def __init__(self, layer: nn.Module, gdn: GDN | None = None, reuse_output: bool = False):
        self.stride = 2 if isinstance(layer, nn.ConvTranspose2d) else 1
        self.phases, self.bias, self.gdn = _layout(layer, gdn)
        self.cout, self.dtype = self.bias.shape[0], self.bias.dtype
        self.reuse_output = reuse_output
        self._padded = self._out = torch.empty(0, dtype=self.dtype)  # storage reused by later calls

    @staticmethod
    def _reuse(storage: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(storage, a tensor of ``shape`` in it): the storage grows when too small. Tiles differ in shape
        at the image's edges, so buffers are kept by size, not by shape."""
        numel = int(torch.Size(shape).numel())
        if storage.numel() < numel:
            storage = storage.new_empty(numel)
        return storage, storage[:numel].view(shape)

    def _padded_input(self, x: torch.Tensor) -> torch.Tensor:
        """x [1, Cin, h, w] zero-padded by one row above, two below and one column either side (the last
        band's shifted views end one value past the last row), flattened: [Cin, (h + 3) (w + 2)]."""
        _, cin, h, w = x.shape
        self._padded, padded = self._reuse(self._padded, (cin, h + 3, w + 2))
        padded[:, 1 : h + 1, 1 : w + 1] = x[0]
        padded[:, [0, h + 1, h + 2]] = 0
        padded[:, 1 : h + 1, [0, w + 1]] = 0
        return padded.view(cin, -1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        s, wp = self.stride, w + 2  # wp: a padded row
        flat = self._padded_input(x)
        if self.reuse_output:
            self._out, out = self._reuse(self._out, (self.cout, h, s, w, s))
        else:
            out = x.new_empty((self.cout, h, s, w, s), dtype=self.dtype)
        rows = max(1, BAND_COLUMNS // wp)

        def band(top: int) -> None:
            """The outputs of input rows top .. top + n - 1, every phase."""
            n = min(rows, h - top)
            length, start = n * wp, (top + 1) * wp + 1  # the band's first output is that of input (top, 0)
            y = flat.new_empty((self.cout, length))
            for phase, taps in enumerate(self.phases):
                for k, (d, e, weight) in enumerate(taps):
                    shifted = flat[:, start + d * wp + e : start + d * wp + e + length]
                    if k == 0:
                        torch.addmm(self.bias, weight, shifted, out=y)
                    else:
                        y.addmm_(weight, shifted)
                if self.gdn:
                    beta, gamma = self.gdn
                    y.mul_(torch.addmm(beta, gamma, y * y).sqrt_())
                a, b = divmod(phase, s)
                out[:, top : top + n, a, :, b] = y.view(self.cout, n, wp)[:, :, :w]

        # bands in parallel, each GEMM on one thread: small GEMMs split between threads scaled badly
        map_single_threaded(band, range(0, h, rows))
        return out.view(1, self.cout, s * h, s * w)


def plan(layers: nn.Sequential) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The steps of a transform: every supported ``deconv`` or 3x3 convolution (with the inverse GDN after
    it) as ``ShiftedGemms``, any other layer as itself."""
    children, steps, i = list(layers.children()), [], 0
    supported = [_is_deconv(layer) or _is_conv3(layer) for layer in children]
    while i < len(children):
        layer = children[i]
        if supported[i]:
            after = children[i + 1] if i + 1 < len(children) else None
            gdn = after if after is not None and _is_inverse_gdn(after) else None
            i += 2 if gdn is not None else 1
            # the output may be a reused buffer where a later ShiftedGemms copies it (through any layers
            # between, which may work in place), so that the transform's output is never one
            steps.append(ShiftedGemms(layer, gdn, reuse_output=any(supported[i:])))
        else:
            steps.append(layer)
            i += 1
    return steps


def compile_transform(layers: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """A decoder transform (g_s, h_s) as a function of its input [1, C, h, w], ``plan``'s steps in turn; run
    it inside ``determinism.thread_independent``, as the layers left to torch need. The output is a fresh
    tensor (no later call overwrites it)."""
    steps = plan(layers)

    def run(x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = step(x)
        return x

    return run
