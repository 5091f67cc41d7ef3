"""DGCNN (Song et al., IEEE TAC 2018): Chebyshev graph convolution over a learnt adjacency of the electrodes.

Defaults follow TorchEEG's `DGCNN` (`torcheeg/models/gnn/dgcnn.py`, commit b6039b1: K = 2, 32 hidden features per
node, a 64-unit layer, batch norm of the node features, no dropout); LibEER's larger variant
(`LibEER/models/DGCNN.py`, commit dddff97: 64 hidden features for 62 electrodes, a 256-unit layer, dropout 0.5, an
adjacency bias and a per-feature bias before the ReLU, and its training's 0.01 penalty on every parameter's norm,
`DGCNN_train.py` line 121) is `{"hidden": 64, "fc": [256], "dropout": 0.5, "input_norm": false, "bias": true,
"norm_penalty": 0.01}`. Where the two differ this model takes one form, stated in docs/models.md.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from gru_xnet.models.common import check_dropout


def _positive(name: str, value) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return value


class DGCNN(nn.Module):
    """DE features `(B, C, bands, S)` to logits: each electrode a node whose features are its bands x segments.

    The graph is the normalised Laplacian of ReLU(A + b), A a learnt C x C matrix (b a learnt scalar with `bias`);
    `K` Chebyshev terms T0 x = x, T1 x = L x, T_k = 2 L T_{k-1} - T_{k-2} are each multiplied by their own weights
    and summed (LibEER's published numbers predate its fix of T0 from ones to x).
    """

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, *, K: int = 2, hidden: int = 32,
                 fc: Sequence[int] = (64,), dropout: float = 0.0, input_norm: bool = True, bias: bool = False,
                 norm_penalty: float = 0.0):
        super().__init__()
        if len(input_shape) < 2 or any(not isinstance(n, int) or n < 1 for n in input_shape):
            raise ValueError(f"input_shape={input_shape!r}: expected (electrodes, features...) of positive integers")
        if not (isinstance(n_classes, int) and n_classes >= 2):
            raise ValueError(f"n_classes={n_classes!r}: expected an integer >= 2")
        self.K, hidden = _positive("K", K), _positive("hidden", hidden)
        widths = [_positive(f"fc[{i}]", w) for i, w in enumerate(fc)]
        if not (isinstance(norm_penalty, (int, float)) and norm_penalty >= 0):
            raise ValueError(f"norm_penalty={norm_penalty!r}: expected a number >= 0")
        n_nodes, n_features = input_shape[0], math.prod(input_shape[1:])
        self.norm = nn.BatchNorm1d(n_features) if input_norm else nn.Identity()
        self.adjacency = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, n_nodes)))
        self.adjacency_bias = nn.Parameter(torch.zeros(1)) if bias else None
        self.weights = nn.Parameter(torch.empty(self.K, n_features, hidden))
        for weight in self.weights.data:  # each order's (F, hidden) matrix as TorchEEG's GraphConvolution
            nn.init.xavier_normal_(weight)
        self.graph_bias = nn.Parameter(torch.zeros(hidden)) if bias else None
        self.drop = nn.Dropout(check_dropout(dropout))
        layers, width = [], n_nodes * hidden
        for out in widths:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(check_dropout(dropout))]
            width = out
        self.head = nn.Sequential(*layers, nn.Linear(width, n_classes))
        self.norm_penalty = float(norm_penalty)

    def laplacian(self) -> torch.Tensor:
        """I - D^-1/2 ReLU(A + b) D^-1/2, D the row sums (LibEER's `laplacian`, 1e-5 against empty rows)."""
        adjacency = torch.relu(self.adjacency + (self.adjacency_bias if self.adjacency_bias is not None else 0.0))
        scale = torch.rsqrt(adjacency.sum(dim=1) + 1e-5)
        identity = torch.eye(len(adjacency), device=adjacency.device, dtype=adjacency.dtype)
        return identity - scale[:, None] * adjacency * scale[None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits `(B, n_classes)` of DE windows `(B, C, bands, S)`."""
        x = x.flatten(2)  # (B, C, F): a node's features are its bands x segments
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        laplacian = self.laplacian().to(x.dtype)
        terms = [x, laplacian @ x][:self.K]  # T0 x, T1 x: (B, C, F)
        while len(terms) < self.K:
            terms.append(2 * laplacian @ terms[-1] - terms[-2])
        x = self.drop(sum(term @ weight for term, weight in zip(terms, self.weights)))  # (B, C, hidden)
        if self.graph_bias is not None:
            x = x + self.graph_bias
        x = torch.relu(x)
        return self.head(self.drop(x.flatten(1)))  # (B, n_classes)

    def penalty(self) -> torch.Tensor:
        """`norm_penalty` x the sum of every parameter tensor's L2 norm, added to the training loss (LibEER)."""
        if not self.norm_penalty:
            return torch.zeros((), device=self.adjacency.device)
        return self.norm_penalty * sum(p.norm() for p in self.parameters())
