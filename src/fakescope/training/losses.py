"""A differentiable detection cost (DCF) for training, in the Maximal Figure-of-Merit way.

The normalised detection cost of a detector that says "fake" when its score ``s`` exceeds a
threshold ``t`` is (NIST SRE / ASVspoof style)::

    DCF = (c_miss * p_target * P_miss + c_fa * (1 - p_target) * P_fa) / min(c_miss * p_target,
                                                                          c_fa * (1 - p_target))
    P_miss = mean over fakes (label 1) of step(t - s)
    P_fa   = mean over reals (label 0) of step(s - t)

so 0 is perfect and 1 is the cost of the best trivial (always-"fake" or always-"real") system.
The step functions have zero gradient almost everywhere. Maximal Figure-of-Merit learning
(Gao, Li, Lee et al., "A MFoM learning approach to robust multiclass multi-label text
categorization", ICML 2004; used for detection-cost training in speaker/spoof verification)
replaces each step by a sigmoid of a scaled margin, ``step(x) ~ sigmoid(temperature * x)``.
The result is a smooth surrogate of the *actual* cost at a fixed operating point (unlike BCE,
which scores every threshold at once); as ``temperature -> inf`` it converges to the hard DCF
wherever no score sits exactly on the threshold.

For a calibrated logit (log-likelihood ratio plus log prior odds 0) the Bayes threshold of the
cost is :func:`bayes_threshold_logit`; the trainer uses it as ``threshold_logit``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bayes_threshold_logit", "hard_dcf", "smooth_dcf_loss"]


def bayes_threshold_logit(c_miss: float, c_fa: float, p_target: float) -> float:
    """Logit threshold that minimises the expected cost for calibrated log-odds scores:
    ``log(c_fa * (1 - p_target) / (c_miss * p_target))`` (0 for equal costs, prior 0.5)."""
    return math.log(c_fa * (1.0 - p_target) / (c_miss * p_target))


def _dcf(
    miss: torch.Tensor,
    fa: torch.Tensor,
    labels: torch.Tensor,
    c_miss: float,
    c_fa: float,
    p_target: float,
) -> torch.Tensor:
    pos = labels > 0.5
    neg = ~pos
    zero = miss.sum() * 0.0  # keeps the graph (and device/dtype) when a class is absent
    p_miss = miss[pos].mean() if bool(pos.any()) else zero
    p_fa = fa[neg].mean() if bool(neg.any()) else zero
    w_miss = c_miss * p_target
    w_fa = c_fa * (1.0 - p_target)
    return (w_miss * p_miss + w_fa * p_fa) / min(w_miss, w_fa)


def smooth_dcf_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    threshold_logit: float | torch.Tensor = 0.0,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    p_target: float = 0.5,
    temperature: float = 10.0,
) -> torch.Tensor:
    """Normalised DCF with ``P_miss``/``P_fa`` made differentiable (scalar tensor).

    ``logits`` (N,) are detector scores (higher = more fake), ``labels`` (N,) are 0 (real) or
    1 (fake). A sample counts as a miss by ``sigmoid(temperature * (threshold - score))`` and as
    a false alarm by ``sigmoid(temperature * (score - threshold))``. A class absent from the
    batch contributes 0. ``threshold_logit`` may be a learnable tensor.
    """
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    logits = logits.reshape(-1)
    labels = labels.reshape(-1).to(logits.dtype)
    margin = logits - threshold_logit
    miss = torch.sigmoid(-temperature * margin)
    fa = torch.sigmoid(temperature * margin)
    return _dcf(miss, fa, labels, c_miss, c_fa, p_target)


def hard_dcf(
    logits: torch.Tensor,
    labels: torch.Tensor,
    threshold_logit: float = 0.0,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    p_target: float = 0.5,
) -> torch.Tensor:
    """The actual normalised DCF at ``threshold_logit`` (fake iff score > threshold)."""
    logits = logits.reshape(-1)
    labels = labels.reshape(-1)
    fake = logits > threshold_logit
    miss = (~fake).to(logits.dtype)
    fa = fake.to(logits.dtype)
    return _dcf(miss, fa, labels, c_miss, c_fa, p_target)
