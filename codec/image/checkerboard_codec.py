"""The ``checkerboard`` image codec: meanscale's bitstream with the latent coded in two halves.

``YLAT`` holds the anchors' residuals round(y - mu) (positions (i + j) even, channel by channel, row by
row) under the hyperprior's scales; ``YCTX`` the other half's, under the means and scales the checkerboard
context (``checkerboard``) draws from the decoded anchors. The context runs on the cpu-f64 path like the
hyper-synthesis, and ``ep_crc32`` covers the scale indexes of both halves, anchors first.
"""

from __future__ import annotations

import copy

import numpy as np

from mcodec.entropy import decode_indexed, encode_indexed, scale_indexes

from .checkerboard import anchors_of, context_parameters
from .hyperprior import HyperpriorCodec, check_parameters, indexes_crc, quantize


class CheckerboardCodec(HyperpriorCodec):
    chunk_types = ("ZLAT", "YLAT", "YCTX")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.context64 = copy.deepcopy(self.model.context).double().cpu().eval()

    def _context(self, y_hat: np.ndarray, anchors: np.ndarray, scales: np.ndarray, means: np.ndarray):
        """(scale indexes, means) of the non-anchors, from the anchors of y_hat (the rest of it 0)."""
        scales, means = context_parameters(self.context64, y_hat, scales, means)
        return scale_indexes(scales[~anchors]), means[~anchors]

    def _code_y(self, y: np.ndarray, scales: np.ndarray, means: np.ndarray) -> tuple[list, int, np.ndarray]:
        anchors = anchors_of(y.shape)
        indexes = scale_indexes(scales[anchors])
        residual = quantize(y[anchors] - means[anchors], self.rounding_offset)
        y_hat = np.zeros_like(y)
        y_hat[anchors] = residual + means[anchors]
        other_indexes, other_means = self._context(y_hat, anchors, scales, means)
        other = quantize(y[~anchors] - other_means, self.rounding_offset)
        y_hat[~anchors] = other + other_means
        crc = indexes_crc(indexes, other_indexes)
        chunks = [
            ("YLAT", encode_indexed(residual, indexes, self.ytables)),
            ("YCTX", encode_indexed(other, other_indexes, self.ytables)),
        ]
        return chunks, crc, y_hat

    def _decode_y(self, payload, scales: np.ndarray, means: np.ndarray) -> np.ndarray:
        anchors = anchors_of(means.shape)
        indexes = scale_indexes(scales[anchors])
        y_hat = np.zeros_like(means)
        y_hat[anchors] = decode_indexed(payload.chunk("YLAT"), indexes, self.ytables) + means[anchors]
        other_indexes, other_means = self._context(y_hat, anchors, scales, means)
        check_parameters(indexes_crc(indexes, other_indexes), payload.params["ep_crc32"])
        y_hat[~anchors] = decode_indexed(payload.chunk("YCTX"), other_indexes, self.ytables) + other_means
        return y_hat
