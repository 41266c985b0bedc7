"""One transformers DynamicCache holding sequences of different lengths, right-aligned (left padding).

Each sequence is prefilled alone; its cache then joins the batch (left-padded to the batch's width),
leaves it when the sequence ends, and the columns that are padding for every remaining row are cut.
Rotary positions were applied at prefill with each sequence's own positions, so padding never shifts
them; the attention mask hides the padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class UnsupportedCache(RuntimeError):
    """The model's cache has layers the batcher cannot pad (sliding-window, quantised, ...)."""


class LeftPaddedCache:
    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        #: Tokens held for each row (the rest of the row, on the left, is padding).
        self.lengths: list[int] = []

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return max(self.lengths, default=0)

    def add(self, single: DynamicCache, length: int) -> None:
        """Append a one-sequence cache as a new last row."""
        _check_layers(single)
        if self.cache is None:
            self.cache, self.lengths = single, [length]
            return
        width = max(self.width, length)
        for mine, theirs in zip(self.cache.layers, single.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self.lengths.append(length)

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in that order) and drop the padding columns nobody needs any more."""
        if not rows:
            self.cache, self.lengths = None, []
            return
        self.lengths = [self.lengths[row] for row in rows]
        index = torch.tensor(rows, dtype=torch.long, device=self.cache.layers[0].keys.device)
        width = self.width
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., -width:, :]
            layer.values = layer.values.index_select(0, index)[..., -width:, :]

    def grew(self) -> None:
        """One token was appended to every row (a decode step ran)."""
        self.lengths = [length + 1 for length in self.lengths]

    def attention_mask(self, device: torch.device) -> torch.Tensor:
        """[rows, width + 1]: 1 over each row's tokens and the token being decoded, 0 over its padding."""
        width = self.width
        columns = torch.arange(width + 1, device=device)
        starts = torch.tensor([width - length for length in self.lengths], device=device)
        return (columns.unsqueeze(0) >= starts.unsqueeze(1)).long()

    def positions(self, device: torch.device) -> torch.Tensor:
        """[rows, 1]: the position of the token being decoded in each row."""
        return torch.tensor(self.lengths, dtype=torch.long, device=device).unsqueeze(1)


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - states.shape[-2]
    return F.pad(states, (0, 0, missing, 0)) if missing else states


def _check_layers(cache: DynamicCache) -> None:
    odd = {type(layer).__name__ for layer in cache.layers if type(layer) is not DynamicLayer}
    if odd:
        raise UnsupportedCache(f"the batcher pads only full-attention DynamicLayer caches, this model has {odd}")
