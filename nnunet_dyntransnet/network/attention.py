"""Dynamic Multi-Head Self-Attention (D-MSA), paper section 3.1.1.

Per head h::

    A_h = softmax(Q_h K_h^T / sqrt(d_h) + Delta_h) V_h,   Delta_h = ReLU(X W_d^h + b_d^h)

``W_d^h`` is read as a ``C x 1`` projection, so ``Delta_h`` is one input-dependent bias per
*key* token, broadcast over the queries (docs/network.md, its D-MSA entry says why). A
bias per query would cancel in the softmax; a full ``N x N`` bias would tie the weights to
one token count.

The fused path folds the bias into the dot product, so that the fastest kernels
(FlashAttention, which takes no mask) still apply:
``q' = [q, sqrt(d)]``, ``k' = [k, Delta]`` gives ``q'.k' / sqrt(d) = q.k / sqrt(d) + Delta``
(head dim padded with zeros to a multiple of 8). Passing ``Delta`` as a broadcast float
``attn_mask`` instead kept attention off the fused kernels (several times slower than plain
attention on an H200) and materialised an ``N x N`` gradient for it (docs/network.md).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from nnunet_dyntransnet.network.rotary import apply_rotary

__all__ = ["Attention", "DynamicBiasAttention", "PlainSelfAttention", "ATTENTIONS", "register_attention",
           "attention_with_key_bias", "folded_width"]

# The attention a transformer block uses, by the name DynTransNet's ``attention`` option takes (register_attention).
ATTENTIONS: Dict[str, type] = {}


class Attention(nn.Module):
    """The whole contract of an attention variant, which a transformer block builds by its name in ``ATTENTIONS``.

    A variant subclasses this class, registers itself with :func:`register_attention` and provides:

    - the constructor ``(dim, num_heads, fused_attn=True)`` (call ``super().__init__(dim, num_heads, fused_attn)``:
      it checks that the heads divide ``dim`` and sets ``dim``, ``num_heads``, ``head_dim`` and ``fused_attn``;
      ``fused_attn`` False asks for an explicit reference path where the variant has one);
    - ``forward(x, rotary=None)``: tokens ``(B, N, C)`` of one window -> ``(B, N, C)``; ``rotary`` is None or
      the ``(cos, sin)`` pair of the block's rotary embedding, for queries and keys
      (:func:`~nnunet_dyntransnet.network.rotary.apply_rotary`);
    - ``saved_elements(tokens)``: elements it keeps for backward per sample for ``tokens`` tokens, which
      nnU-Net's planners and fit-to-GPU read through the network's memory model (no default: only the variant
      knows; ``tests/network/test_memory_model.py`` can check it against autograd);
    - ``attention_output_elements(tokens)``, optional: what selective checkpointing keeps of it when the block
      recomputes the rest; by default its output, ``C`` per token.
    """

    def __init__(self, dim: int, num_heads: int, fused_attn: bool = True) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads != 0:
            raise ValueError(f"{type(self).__name__}: dim={dim} must be divisible by num_heads={num_heads} "
                             f"(num_heads >= 1); choose a head count that divides the channel count.")
        self.dim, self.num_heads, self.head_dim, self.fused_attn = dim, num_heads, dim // num_heads, fused_attn

    def forward(self, x: torch.Tensor, rotary: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no forward(x, rotary)")

    def saved_elements(self, tokens: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must say what it keeps for backward, saved_elements(tokens): "
                                  f"nnU-Net's planners read it (docs/developing.md)")

    def attention_output_elements(self, tokens: int) -> float:
        """What selective checkpointing keeps of the attention: by default its output, ``C`` per token."""
        return float(self.dim * tokens)


def register_attention(name: str):
    """Class decorator: make an :class:`Attention` subclass the attention DynTransNet builds for ``attention=name``."""
    def register(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Attention)):
            raise TypeError(f"register_attention({name!r}): {cls!r} is not a subclass of Attention, whose contract "
                            f"(constructor, forward, saved_elements) the transformer blocks rely on")
        ATTENTIONS[name] = cls
        return cls

    return register


def folded_width(head_dim: int) -> int:
    """Head dim of the folded q', k', v': ``head_dim + 1`` rounded up to a multiple of 8 (flash kernels want one)."""
    return -(-(head_dim + 1) // 8) * 8


def attention_with_key_bias(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: Optional[torch.Tensor], dropout_p: float = 0.0
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v`` through ``scaled_dot_product_attention``, bias folded into ``q . k``.

    Args:
        q, k, v: ``(B, H, N, d)``.
        bias: ``(B, H, 1, N)``, one value per key, or None.
    """
    if bias is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    d = q.shape[-1]
    width = folded_width(d)
    zeros = q.new_zeros(*q.shape[:-1], width - d - 1)
    q = torch.cat((q, q.new_full((*q.shape[:-1], 1), d ** 0.5), zeros), dim=-1)
    k = torch.cat((k, bias.transpose(-1, -2).to(k.dtype), zeros), dim=-1)
    v = F.pad(v, (0, width - d))
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=d ** -0.5)[..., :d]


@register_attention("dmsa")
class DynamicBiasAttention(Attention):
    """Multi-head self-attention with an input-dependent additive bias per key token.

    Args:
        dim: token channels ``C``.
        num_heads: number of heads ``H``; must divide ``dim``.
        dynamic_bias: if False this is plain multi-head self-attention (the paper's "MSA"
            ablation): no bias projection is built.
        fused_attn: use :func:`attention_with_key_bias` (``scaled_dot_product_attention``);
            otherwise the explicit reference path.

    Shapes:
        ``forward(x, rotary)``: ``x`` is ``(B, N, C)``; returns ``(B, N, C)``. ``rotary`` is an
        optional ``(cos, sin)`` pair from :class:`~nnunet_dyntransnet.network.rotary.AxialRotaryEmbedding`
        applied to queries and keys.

    Example:
        >>> attn = DynamicBiasAttention(dim=64, num_heads=2)
        >>> attn(torch.randn(2, 512, 64)).shape
        torch.Size([2, 512, 64])
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dynamic_bias: bool = True,
        fused_attn: bool = True,
    ) -> None:
        super().__init__(dim, num_heads, fused_attn)
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        # W_d: one output per head, i.e. C x 1 per head (the per-key reading of the paper).
        self.bias_proj: Optional[nn.Linear] = nn.Linear(dim, num_heads) if dynamic_bias else None
        self.proj = nn.Linear(dim, dim)

    def saved_elements(self, tokens: int) -> float:
        """Elements kept for backward per sample for ``tokens`` tokens, on the fused path (the one trained).

        Per token: the qkv projection's input (``C``), one log-sum-exp per head, and q, k, v and the
        attention output. With the bias these are the folded, padded q', k', v' and output (``H x
        folded_width``, 25% more than ``C`` at head dim 32) and the bias itself; without it v is a view of the
        qkv projection's output, which it keeps whole (3 ``C``). The output projection's input (``C``) is a
        copy only where the output is cut from the folded width across several heads: the fused kernels lay
        their output out token-major, so the heads' merge is a view of it otherwise (torch's math fallback
        copies, which this count does not see). Checked against autograd's saved tensors in
        ``tests/network/test_memory_model.py``.
        """
        c, h = self.proj.in_features, self.num_heads
        if self.bias_proj is not None:
            kernel_inputs = 3 * h * folded_width(self.head_dim) + h  # q', k', v' and the bias
        else:
            kernel_inputs = 3 * c + 2 * c  # the qkv output (kept whole through v) and the rotated q, k
        merged_heads = c if self.bias_proj is not None and h > 1 else 0
        return float((c + merged_heads + kernel_inputs) * tokens) + self.attention_output_elements(tokens)

    def attention_output_elements(self, tokens: int) -> float:
        """Elements of the fused attention kernel's outputs for ``tokens`` tokens (what selective checkpointing
        keeps of it): the output, padded to the folded width with the bias, and a log-sum-exp per head."""
        h = self.num_heads
        width = folded_width(self.head_dim) if self.bias_proj is not None else self.head_dim
        return float((h * width + h) * tokens)

    @property
    def dynamic_bias(self) -> bool:
        return self.bias_proj is not None

    def key_bias(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The dynamic bias ``Delta``: ``(B, N, C)`` -> ``(B, H, 1, N)``, or None for plain MSA."""
        if self.bias_proj is None:
            return None
        return F.relu(self.bias_proj(x)).transpose(1, 2).unsqueeze(2)

    def queries_keys_values(self, x: torch.Tensor, rotary: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, N, C)`` -> q, k, v, each ``(B, H, N, head_dim)``; q and k rotated when ``rotary`` is given."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return q, k, v

    def forward(self, x: torch.Tensor, rotary: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.queries_keys_values(x, rotary)
        bias = self.key_bias(x)
        if self.fused_attn:
            out = attention_with_key_bias(q, k, v, bias)
        else:
            scores = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                scores = scores + bias
            out = scores.softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


@register_attention("msa")
class PlainSelfAttention(DynamicBiasAttention):
    """Plain multi-head self-attention, the paper's "MSA" ablation: D-MSA without the bias projection."""

    def __init__(self, dim: int, num_heads: int, fused_attn: bool = True, **kwargs) -> None:
        super().__init__(dim, num_heads, dynamic_bias=False, fused_attn=fused_attn, **kwargs)
