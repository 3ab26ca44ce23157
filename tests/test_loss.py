"""Tests of anchorprep.loss against docs/FORMAT.md ("Anchor weights", the loss table) and an explicit per-frame reference."""

from __future__ import annotations

import ast
import doctest
import inspect
import itertools
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import anchorprep.loss as L
from anchorprep.errors import UsageError
from anchorprep.loss import (
    DEFAULT_GAIN,
    DEFAULT_GAMMA,
    DEFAULT_KERNEL,
    DEFAULT_WIDTH,
    NO_ANCHOR,
    AnchorWeights,
    FocalLoss,
    FrameCrossEntropy,
    StreamingAnchorLoss,
    anchor_kernel,
    anchor_weights,
    focal_loss,
    frame_cross_entropy,
    streaming_anchor_loss,
)

REPO = Path(__file__).resolve().parents[1]
KERNELS = ("linear", "exponential", "gaussian", "box")
ANCHOR_VARIANTS = ("sal", "sa+fl", "safl")
ALL_VARIANTS = ("fce", "fl", *ANCHOR_VARIANTS)
WIDTHS = ({"width": 4.0}, {"width": 5.0, "width_before": 3.0, "width_after": 6.0})
NUM_CLASSES = (1, 2, 5)  # 1 = a single sigmoid logit, (B, T)
MASKINGS = ("none", "mask", "lengths", "both")


# --------------------------------------------------------------------------- reference


def ref_kernel(d: int, kernel: str, w_before: float, w_after: float) -> float:
    """The loss table of the format document, literally."""
    if abs(d) >= 32767:
        return 0.0
    w = w_before if d < 0 else w_after
    if kernel == "linear":
        return max(0.0, 1.0 - abs(d) / w)
    if kernel == "exponential":
        return math.exp(-abs(d) / w)
    if kernel == "gaussian":
        return math.exp(-d * d / (2.0 * w * w))
    return 1.0 if abs(d) <= w else 0.0


def ref_alpha(alpha, y: int) -> float:
    if alpha is None:
        return 1.0
    if isinstance(alpha, torch.Tensor):
        return float(alpha[y])
    return alpha if y >= 1 else 1.0 - alpha


def reference_loss(
    logits,
    target,
    distance,
    *,
    variant,
    kernel=DEFAULT_KERNEL,
    width=DEFAULT_WIDTH,
    width_before=None,
    width_after=None,
    gain=DEFAULT_GAIN,
    gamma=2.0,
    alpha=None,
    mask=None,
    lengths=None,
    ignore_index=-100,
    reduction="mean",
    normalize="frames",
):
    """Frame by frame, with torch scalar ops (so autograd gives the reference gradient)."""
    batch, frames = target.shape
    single = logits.dim() == 2 or logits.shape[-1] == 1
    z = logits.reshape(batch, frames) if single else logits
    w_before = width if width_before is None else width_before
    w_after = width if width_after is None else width_after
    rows, count, weight_sum = [], 0, 0.0
    for b in range(batch):
        row = []
        for t in range(frames):
            y = int(target[b, t])
            valid = (
                y != ignore_index
                and (lengths is None or t < int(lengths[b]))
                and (mask is None or bool(mask[b, t]))
            )
            if not valid:
                row.append(torch.zeros((), dtype=logits.dtype))
                continue
            if single:
                log_p = F.logsigmoid(z[b, t] if y == 1 else -z[b, t])
            else:
                log_p = torch.log_softmax(z[b, t], dim=0)[y]
            p, ce = torch.exp(log_p), -log_p
            k = 0.0 if distance is None else ref_kernel(int(distance[b, t]), kernel, w_before, w_after)
            w = 1.0 + gain * k
            if variant == "fce":
                term = ce
            elif variant == "fl":
                term = (1 - p) ** gamma * ce
            elif variant == "sal":
                term = w * ce
            elif variant == "sa+fl":
                term = w * (1 - p) ** gamma * ce
            else:
                term = w * (1 - p) ** (gamma * k) * ce
            row.append(ref_alpha(alpha, y) * term)
            count += 1
            weight_sum += w
        rows.append(torch.stack(row))
    terms = torch.stack(rows)
    if reduction == "none":
        return terms
    if reduction == "sum":
        return terms.sum()
    denominator = weight_sum if (normalize == "weights" and variant in ANCHOR_VARIANTS) else count
    return terms.sum() / max(denominator, 1)


def ours(logits, target, distance, *, variant, **kw):
    """Dispatch to the functional under test, dropping arguments it does not take."""
    common = {k: kw[k] for k in ("alpha", "mask", "lengths", "ignore_index", "reduction") if k in kw}
    if variant == "fce":
        return frame_cross_entropy(logits, target, **common)
    if variant == "fl":
        return focal_loss(logits, target, gamma=kw.get("gamma", DEFAULT_GAMMA), **common)
    extra = {k: kw[k] for k in ("kernel", "width", "width_before", "width_after", "gain", "gamma", "normalize") if k in kw}
    return streaming_anchor_loss(logits, target, distance, variant=variant, **common, **extra)


def make_inputs(num_classes: int, *, batch=3, frames=7, seed=0, dtype=torch.float64, scale=3.0):
    """Random logits/targets/distances with an ignored frame, a row with no anchor, a mask."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, frames) if num_classes == 1 else (batch, frames, num_classes)
    logits = (torch.randn(shape, generator=gen, dtype=dtype) * scale).requires_grad_(True)
    target = torch.randint(0, max(num_classes, 2), (batch, frames), generator=gen)
    target[0, 1] = -100
    distance = torch.randint(-9, 10, (batch, frames), generator=gen).to(torch.int16)
    distance[-1] = NO_ANCHOR  # the last utterance has no anchor
    distance[1, 0] = -NO_ANCHOR
    mask = torch.rand(batch, frames, generator=gen) < 0.8
    lengths = torch.tensor([frames, frames - 2, 3, frames - 1][:batch])
    classes = max(num_classes, 2)
    alpha = torch.rand(classes, generator=gen, dtype=dtype) + 0.1
    return logits, target, distance, mask, lengths, alpha


def masking_kwargs(style: str, mask, lengths) -> dict:
    return {
        "none": {},
        "mask": {"mask": mask},
        "lengths": {"lengths": lengths},
        "both": {"mask": mask, "lengths": lengths},
    }[style]


def assert_value_and_grad(variant, logits, target, distance, reduction, **kw):
    """Our loss equals the reference in value and in gradient w.r.t. the logits."""
    got = ours(logits, target, distance, variant=variant, reduction=reduction, **kw)
    want = reference_loss(logits, target, distance, variant=variant, reduction=reduction, **kw)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    weights = torch.linspace(0.5, 1.5, got.numel(), dtype=got.dtype).reshape(got.shape)
    (g_got,) = torch.autograd.grad((got * weights).sum(), logits)
    (g_want,) = torch.autograd.grad((want * weights).sum(), logits)
    torch.testing.assert_close(g_got, g_want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- reference equality


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_matches_reference_for_every_kernel_width_reduction(variant, num_classes):
    logits, target, distance, mask, lengths, alpha = make_inputs(num_classes)
    kernels = KERNELS if variant in ANCHOR_VARIANTS else ("linear",)
    alphas = (None, 0.25, alpha)
    combos = itertools.product(kernels, WIDTHS, ("none", "mean", "sum"))
    for i, (kernel, widths, reduction) in enumerate(combos):
        kw = dict(
            kernel=kernel, gain=1.5, gamma=1.5, alpha=alphas[i % 3],
            normalize=("frames", "weights")[i % 2],
            **widths, **masking_kwargs(MASKINGS[i % 4], mask, lengths),
        )
        assert_value_and_grad(variant, logits, target, distance, reduction, **kw)


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_matches_reference_for_every_alpha_masking_normalize(variant, num_classes):
    logits, target, distance, mask, lengths, alpha = make_inputs(num_classes, seed=1)
    normalizations = ("frames", "weights") if variant in ANCHOR_VARIANTS else ("frames",)
    combos = itertools.product((None, 0.7, alpha), MASKINGS, normalizations)
    for i, (a, style, normalize) in enumerate(combos):
        kw = dict(alpha=a, normalize=normalize, gamma=0.5, **masking_kwargs(style, mask, lengths))
        assert_value_and_grad(variant, logits, target, distance, ("mean", "sum")[i % 2], **kw)


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_matches_reference_with_many_classes_and_custom_ignore_index(variant):
    # C = 40 takes the last-dim log_softmax path; ignore_index may be any value
    logits, target, distance, mask, lengths, _ = make_inputs(40, batch=2, frames=5, seed=2)
    target[1, 2] = 7
    assert_value_and_grad(variant, logits, target, distance, "mean", ignore_index=7, mask=mask)


def test_mask_and_lengths_are_the_same_thing():
    logits, target, distance, _, lengths, _ = make_inputs(5)
    as_mask = torch.arange(target.shape[1]) < lengths[:, None]
    for variant in ALL_VARIANTS:
        by_lengths = ours(logits, target, distance, variant=variant, lengths=lengths)
        by_mask = ours(logits, target, distance, variant=variant, mask=as_mask)
        torch.testing.assert_close(by_lengths, by_mask, rtol=0, atol=0)


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_spec_identities(num_classes, reduction):
    logits, target, distance, mask, _, _ = make_inputs(num_classes, seed=3)
    kw = dict(mask=mask, reduction=reduction, kernel="exponential", width=5.0)

    def both(fn):  # value and gradient
        value = fn()
        (grad,) = torch.autograd.grad(value.sum(), logits)
        return value, grad

    def close(a, b):
        torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-14)

    fce = both(lambda: frame_cross_entropy(logits, target, mask=mask, reduction=reduction))
    fl = both(lambda: focal_loss(logits, target, gamma=1.7, mask=mask, reduction=reduction))
    close(both(lambda: streaming_anchor_loss(logits, target, distance, variant="sal", gain=0.0, **kw)), fce)
    close(both(lambda: streaming_anchor_loss(logits, target, distance, variant="sa+fl", gain=0.0, gamma=1.7, **kw)), fl)
    close(
        both(lambda: streaming_anchor_loss(logits, target, distance, variant="safl", gamma=0.0, gain=2.0, **kw)),
        both(lambda: streaming_anchor_loss(logits, target, distance, variant="sal", gain=2.0, **kw)),
    )
    close(both(lambda: focal_loss(logits, target, gamma=0.0, mask=mask, reduction=reduction)), fce)


@settings(max_examples=25, deadline=None)
@given(
    gain=st.floats(0.0, 10.0),
    gamma=st.floats(0.0, 5.0),
    width=st.floats(0.5, 100.0),
    kernel=st.sampled_from(KERNELS),
    num_classes=st.sampled_from(NUM_CLASSES),
)
def test_identities_hold_for_any_hyperparameters(gain, gamma, width, kernel, num_classes):
    logits, target, distance, _, lengths, _ = make_inputs(num_classes, seed=4)
    kw = dict(kernel=kernel, width=width, lengths=lengths)
    sal0 = streaming_anchor_loss(logits, target, distance, variant="sal", gain=0.0, **kw)
    fce = frame_cross_entropy(logits, target, lengths=lengths)
    torch.testing.assert_close(sal0, fce, rtol=1e-12, atol=0)
    safl0 = streaming_anchor_loss(logits, target, distance, variant="safl", gain=gain, gamma=0.0, **kw)
    sal = streaming_anchor_loss(logits, target, distance, variant="sal", gain=gain, **kw)
    torch.testing.assert_close(safl0, sal, rtol=1e-12, atol=0)
    sa_fl0 = streaming_anchor_loss(logits, target, distance, variant="sa+fl", gain=0.0, gamma=gamma, **kw)
    fl = focal_loss(logits, target, gamma=gamma, lengths=lengths)
    torch.testing.assert_close(sa_fl0, fl, rtol=1e-12, atol=0)
    # normalize="weights" keeps a uniform-CE loss on the FCE scale whatever the weights
    flat = torch.zeros_like(logits)
    weighted = streaming_anchor_loss(flat, target, distance, gain=gain, normalize="weights", **kw)
    torch.testing.assert_close(weighted, frame_cross_entropy(flat, target, lengths=lengths))


# --------------------------------------------------------------------------- torch parity


@pytest.mark.parametrize("num_classes", [2, 5, 40])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fce_equals_torch_cross_entropy(num_classes, dtype):
    logits, target, *_ = make_inputs(num_classes, batch=4, frames=9, seed=5, dtype=dtype)
    flat_logits, flat_target = logits.reshape(-1, num_classes), target.reshape(-1)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    for reduction in ("mean", "sum", "none"):
        got = frame_cross_entropy(logits, target, reduction=reduction)
        want = F.cross_entropy(flat_logits, flat_target, reduction=reduction)
        torch.testing.assert_close(got.reshape(want.shape), want, **tol)
        (g_got,) = torch.autograd.grad(got.sum(), logits)
        (g_want,) = torch.autograd.grad(want.sum(), logits)
        torch.testing.assert_close(g_got, g_want, **tol)
    # class weights with "sum" (torch's "mean" divides by Σα instead of N, see the docs)
    weight = torch.rand(num_classes, dtype=dtype) + 0.5
    torch.testing.assert_close(
        frame_cross_entropy(logits, target, alpha=weight, reduction="sum"),
        F.cross_entropy(flat_logits, flat_target, weight=weight, reduction="sum"),
        **tol,
    )


def test_binary_forms_agree():
    """(B, T), (B, T, 1) and 2-class (B, T, 2) logits [0, x] are the same model."""
    x, target, distance, mask, _, _ = make_inputs(1, seed=6)
    x = x.detach()
    for variant, alpha in itertools.product(ALL_VARIANTS, (None, 0.3, torch.tensor([0.4, 1.6], dtype=x.dtype))):
        forms = {
            "flat": x.clone().requires_grad_(True),
            "single": x.clone().unsqueeze(-1).requires_grad_(True),
            "two": torch.stack((torch.zeros_like(x), x), dim=-1).requires_grad_(True),
        }
        values, grads = {}, {}
        for name, z in forms.items():
            loss = ours(z, target, distance, variant=variant, alpha=alpha, mask=mask, gamma=0.7)
            (grad,) = torch.autograd.grad(loss, z)
            values[name] = loss
            grads[name] = grad.reshape(*target.shape, -1)[..., -1]  # ∂/∂x (or ∂/∂z_1)
        for name in ("single", "two"):
            torch.testing.assert_close(values[name], values["flat"], rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(grads[name], grads["flat"], rtol=1e-12, atol=1e-14)


def test_two_class_softmax_matches_explicit_softmax():
    """The 2-class (sigmoid of the margin) path equals log_softmax + gather for any [z0, z1]."""
    logits, target, *_ = make_inputs(2, seed=7)
    got = focal_loss(logits, target, gamma=1.3, reduction="none")
    log_p = torch.log_softmax(logits, -1).gather(-1, target.clamp_min(0)[..., None])[..., 0]
    want = torch.where(target >= 0, -((1 - log_p.exp()) ** 1.3) * log_p, 0.0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_gradcheck(variant, num_classes):
    logits, target, distance, _, lengths, alpha = make_inputs(num_classes, batch=2, frames=5, seed=8)
    for gamma, reduction in ((0.4, "mean"), (2.0, "none")):
        fn = lambda z: ours(  # noqa: E731
            z, target, distance, variant=variant, gamma=gamma, alpha=alpha, lengths=lengths,
            reduction=reduction, kernel="gaussian", width=3.0,
        )
        assert torch.autograd.gradcheck(fn, (logits,), eps=1e-6, atol=1e-7, fast_mode=True)


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_extreme_logits_give_finite_loss_and_gradient(variant, num_classes):
    """Logits ±1e4 (p = 1 and p = 0 exactly in float32), focal exponents from 0 to tiny."""
    batch, frames = 4, 8
    gen = torch.Generator().manual_seed(9)
    shape = (batch, frames) if num_classes == 1 else (batch, frames, num_classes)
    logits = (torch.randint(0, 2, shape, generator=gen).float() * 2 - 1) * 1e4
    target = torch.randint(0, max(num_classes, 2), (batch, frames), generator=gen)
    # distances giving K = 1, K ~ 1e-35 (exponential, W = 1, d = 80: γK tiny but > 0) and K = 0
    distance = torch.tensor([0, 1, 80, -80, 3, 200, NO_ANCHOR, -NO_ANCHOR], dtype=torch.int16)
    distance = distance.expand(batch, frames)
    for gamma, kernel in ((0.5, "exponential"), (2.0, "linear"), (1e-30, "gaussian")):
        z = logits.clone().requires_grad_(True)
        loss = ours(z, target, distance, variant=variant, gamma=gamma, kernel=kernel, width=1.0)
        loss.backward()
        assert torch.isfinite(loss), (variant, gamma, kernel)
        assert torch.isfinite(z.grad).all(), (variant, gamma, kernel)
        # confidently right frames have ~0 gradient, confidently wrong ones the full CE gradient
        assert z.grad.abs().max() <= 2.0 * (1 + DEFAULT_GAIN) / (batch * frames) + 1e-6


def test_safl_gradient_near_p_equal_one_is_finite_and_continuous():
    """q^e with tiny e: autograd through pow would give inf·0; ours approaches the limit."""
    z = torch.tensor([[20.0, 60.0, 100.0, 1e4]], dtype=torch.float64, requires_grad=True)
    target = torch.ones(1, 4, dtype=torch.long)
    distance = torch.full((1, 4), 40, dtype=torch.int16)  # exponential W=1: K = e^-40 ~ 4e-18
    loss = streaming_anchor_loss(
        z, target, distance, variant="safl", kernel="exponential", width=1.0, reduction="sum"
    )
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(grad).all()
    # d/dx of w·q^e·CE with q = σ(-x) ~ e^-x: ≈ -(1 + e)·q^(1+e), tiny and never NaN
    assert (grad <= 0).all() and grad[0, 0] < 0 and grad.abs().max() < 1e-8


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_create_graph_works_for_cross_entropy_losses_and_is_refused_elsewhere(variant, num_classes):
    """FCE and SAL with C > 2 are torch's cross entropy times constants: second derivatives work
    (e.g. for gradient penalties). Every closed-form backward refuses create_graph=True."""
    logits, target, distance, _, lengths, _ = make_inputs(num_classes)
    loss = ours(logits, target, distance, variant=variant, lengths=lengths, gamma=1.5)
    if num_classes > 2 and variant in ("fce", "sal"):
        (grad,) = torch.autograd.grad(loss, logits, create_graph=True)
        (second,) = torch.autograd.grad(grad.pow(2).sum(), logits)
        assert second.abs().sum() > 0
        if variant == "fce":  # the same as torch's own cross entropy, second derivative included
            z = logits.detach().clone().requires_grad_(True)
            valid = torch.arange(target.shape[1]) < lengths[:, None]
            want = F.cross_entropy(z.transpose(1, 2), torch.where(valid, target, -100))
            (g,) = torch.autograd.grad(want, z, create_graph=True)
            (want_second,) = torch.autograd.grad(g.pow(2).sum(), z)
            torch.testing.assert_close(second, want_second, rtol=1e-10, atol=1e-12)
    else:
        with pytest.raises(RuntimeError, match="first derivatives only"):
            torch.autograd.grad(loss, logits, create_graph=True)


def test_non_contiguous_logits_a_retained_graph_and_no_grad():
    """Views as a model produces them (transposed heads, (B, T, 1)); backward twice accumulates;
    the value without autograd is the same."""
    gen = torch.Generator().manual_seed(2)
    target = torch.randint(0, 12, (3, 20), generator=gen)
    distance = torch.randint(-30, 30, (3, 20), generator=gen).to(torch.int16)
    cases = (((3, 20, 1), lambda z: z, target % 2), ((3, 2, 20), lambda z: z.transpose(1, 2), target % 2),
             ((20, 3, 12), lambda z: z.transpose(0, 1), target))
    for shape, view, y in cases:
        base = torch.randn(*shape, generator=gen)
        z = base.clone().requires_grad_(True)
        loss = streaming_anchor_loss(view(z), y, distance, variant="safl", reduction="none")
        loss.sum().backward(retain_graph=True)
        once = z.grad.clone()
        loss.sum().backward()
        torch.testing.assert_close(z.grad, 2 * once)
        dense = view(base).contiguous().requires_grad_(True)
        want = streaming_anchor_loss(dense, y, distance, variant="safl", reduction="none")
        want.sum().backward()
        torch.testing.assert_close(loss, want)
        torch.testing.assert_close(view(once), dense.grad)
        with torch.no_grad():
            assert torch.equal(streaming_anchor_loss(view(base), y, distance, variant="safl", reduction="none"), want)


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_masked_frames_are_really_excluded(variant, num_classes):
    logits, target, distance, mask, lengths, _ = make_inputs(num_classes, dtype=torch.float32, seed=10)
    logits = logits.detach()
    kw = dict(variant=variant, mask=mask, lengths=lengths, alpha=0.3)
    excluded = ~mask | (torch.arange(target.shape[1]) >= lengths[:, None]) | (target == -100)
    assert excluded.any() and not excluded.all()
    cells = excluded if num_classes == 1 else excluded[..., None].expand_as(logits)

    def run(z):
        z = z.clone().requires_grad_(True)
        loss = ours(z, target, distance, reduction="sum", **kw)
        (grad,) = torch.autograd.grad(loss, z)
        return loss, grad

    base_loss, base_grad = run(logits)
    assert (base_grad[cells] == 0).all()
    garbage = [torch.randn_like(logits) * 50]
    if num_classes <= 2:  # non-finite logits at masked frames are ignored too (C > 2: finite only)
        garbage += [torch.full_like(logits, float("nan")), torch.full_like(logits, -float("inf"))]
    for fill in garbage:
        loss, grad = run(torch.where(cells, fill, logits))
        assert torch.equal(loss, base_loss)
        assert torch.equal(grad[~cells], base_grad[~cells])
        assert (grad[cells] == 0).all()
    per_frame = ours(logits, target, distance, reduction="none", **kw)
    assert per_frame.shape == target.shape and (per_frame[excluded] == 0).all()
    if num_classes > 2:  # the loss value never sees NaN at a masked frame, whatever the path
        nan_logits = torch.where(cells, float("nan"), logits)
        assert torch.equal(ours(nan_logits, target, distance, reduction="sum", **kw), base_loss)


def test_no_valid_frame_gives_zero_mean_not_nan():
    logits, target, distance, *_ = make_inputs(5)
    target = torch.full_like(target, -100)
    for variant in ALL_VARIANTS:
        for normalize in ("frames", "weights"):
            z = logits.detach().clone().requires_grad_(True)
            loss = ours(z, target, distance, variant=variant, normalize=normalize)
            loss.backward()
            assert loss.item() == 0.0 and (z.grad == 0).all()


@pytest.mark.parametrize("num_classes", NUM_CLASSES)
def test_an_empty_batch_gives_zero_not_an_error(num_classes):
    for batch, frames in ((0, 30), (2, 0)):
        shape = (batch, frames) if num_classes == 1 else (batch, frames, num_classes)
        target, distance = torch.zeros(batch, frames, dtype=torch.long), torch.zeros(batch, frames, dtype=torch.int16)
        for variant, reduction in itertools.product(ALL_VARIANTS, ("mean", "sum", "none")):
            z = torch.randn(shape, requires_grad=True)
            loss = ours(z, target, distance, variant=variant, reduction=reduction)
            loss.sum().backward()
            assert loss.shape == (target.shape if reduction == "none" else ())
            assert float(loss.detach().sum()) == 0.0 and z.grad.shape == z.shape


# --------------------------------------------------------------------------- kernels & distances


def test_kernel_values_follow_the_spec_table():
    d = torch.arange(-12, 13)
    for kernel, widths in itertools.product(KERNELS, WIDTHS + ({"width": 2.5},)):
        w_before = widths.get("width_before", widths["width"])
        w_after = widths.get("width_after", widths["width"])
        want = torch.tensor([ref_kernel(int(v), kernel, w_before, w_after) for v in d])
        got = anchor_kernel(d, kernel, **widths)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
        assert got[12] == 1.0  # K(0) = 1


@settings(max_examples=40, deadline=None)
@given(
    kernel=st.sampled_from(KERNELS),
    w_before=st.floats(0.1, 5e4),
    w_after=st.floats(0.1, 5e4),
    gain=st.floats(0.0, 10.0),
    d=st.lists(st.integers(-40000, 40000), min_size=1, max_size=50),
)
def test_kernel_properties(kernel, w_before, w_after, gain, d):
    dist = torch.tensor(d, dtype=torch.int32)
    k = anchor_kernel(dist, kernel, width_before=w_before, width_after=w_after)
    assert ((k >= 0) & (k <= 1)).all()
    assert (k[dist.abs() >= NO_ANCHOR] == 0).all()  # no anchor in range, whatever the width
    assert (k[dist == 0] == 1).all()
    # non-increasing in |d| on each side
    for side in (dist >= 0, dist < 0):
        a, v = dist[side].abs().sort()
        assert (k[side][v].diff() <= 1e-7).all()
    w = anchor_weights(dist, kernel, width_before=w_before, width_after=w_after, gain=gain)
    torch.testing.assert_close(w, 1 + gain * k)


def test_int16_distances_and_no_anchor():
    d16 = torch.tensor([[-32767, -5, 0, 5, 32767, 32767]], dtype=torch.int16)
    for kernel, width in itertools.product(KERNELS, (3.0, 1e5)):
        ks = [anchor_kernel(d16.to(dtype), kernel, width) for dtype in (torch.int16, torch.int32, torch.int64, torch.float32)]
        for k in ks[1:]:
            torch.testing.assert_close(k, ks[0], rtol=0, atol=0)
        assert ks[0][0, 0] == 0 and ks[0][0, 4] == 0 and ks[0][0, 5] == 0 and ks[0][0, 2] == 1
    for dtype in (torch.int16, torch.int32, torch.int64, torch.float32):  # the input is not touched
        d = d16.to(dtype)
        before = d.clone()
        anchor_kernel(d, "exponential", 3.0).add_(1)
        assert torch.equal(d, before)
    # int16 and int64 distances give the same loss; a row with no anchor has w = 1 (plain CE)
    logits, target, distance, *_ = make_inputs(3)
    for variant in ANCHOR_VARIANTS:
        a = streaming_anchor_loss(logits, target, distance, variant=variant, reduction="none")
        b = streaming_anchor_loss(logits, target, distance.long(), variant=variant, reduction="none")
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    sal = streaming_anchor_loss(logits, target, distance, variant="sal", gain=5.0, reduction="none")
    fce = frame_cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(sal[-1], fce[-1])  # the last row has no anchor


def test_anchor_weights_doc_example_and_module():
    d = torch.tensor([-20, -10, 0, 10, 32767])
    torch.testing.assert_close(anchor_weights(d, kernel="linear", width=20.0, gain=2.0), torch.tensor([1.0, 2.0, 3.0, 2.0, 1.0]))
    module = AnchorWeights(kernel="box", width_before=1.0, width_after=2.0, gain=3.0)
    torch.testing.assert_close(module(torch.tensor([-3, -1, 0, 2, 3])), torch.tensor([1.0, 4.0, 4.0, 4.0, 1.0]))
    assert "box" in repr(module)


# --------------------------------------------------------------------------- modules & API


def test_modules_match_functionals_and_move_alpha_with_the_module():
    logits, target, distance, mask, lengths, alpha = make_inputs(5, dtype=torch.float32)
    alpha = alpha.float()
    pairs = [
        (FrameCrossEntropy(alpha=alpha)(logits, target, mask, lengths),
         frame_cross_entropy(logits, target, alpha=alpha, mask=mask, lengths=lengths)),
        (FocalLoss(gamma=1.5, alpha=0.25, reduction="sum")(logits, target, lengths=lengths),
         focal_loss(logits, target, gamma=1.5, alpha=0.25, reduction="sum", lengths=lengths)),
    ]
    for variant in ANCHOR_VARIANTS:
        kw = dict(variant=variant, kernel="gaussian", width=3.0, width_after=6.0, gain=2.0, gamma=0.5, alpha=alpha, normalize="weights")
        pairs.append((StreamingAnchorLoss(**kw)(logits, target, distance, mask=mask),
                      streaming_anchor_loss(logits, target, distance, mask=mask, **kw)))
    for got, want in pairs:
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    module = StreamingAnchorLoss(alpha=alpha).to(torch.float64)
    assert module.alpha.dtype == torch.float64 and "alpha" not in module.state_dict()
    assert "variant='sal'" in repr(module)


def test_defaults_come_from_the_module_constants():
    assert (DEFAULT_KERNEL, DEFAULT_WIDTH, DEFAULT_GAIN, DEFAULT_GAMMA) == ("exponential", 15.0, 4.0, 2.0)
    expected = {"kernel": DEFAULT_KERNEL, "width": DEFAULT_WIDTH, "gain": DEFAULT_GAIN, "gamma": DEFAULT_GAMMA}
    for fn in (streaming_anchor_loss, StreamingAnchorLoss, anchor_weights, AnchorWeights, anchor_kernel, focal_loss, FocalLoss):
        params = inspect.signature(fn).parameters
        for name, value in expected.items():
            if name in params:
                assert params[name].default == value, (fn, name)


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda z, y, d: streaming_anchor_loss(z, y, d, variant="sfl"), "variant"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, kernel="triangle"), "kernel"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, width=0.0), "width"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, width_after=-1.0), "width_after"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, width=float("inf")), "width"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, gain=-1.0), "gain"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d, normalize="batch"), "normalize"),
        (lambda z, y, d: focal_loss(z, y, gamma=-0.5), "gamma"),
        (lambda z, y, d: frame_cross_entropy(z, y, reduction="avg"), "reduction"),
        (lambda z, y, d: frame_cross_entropy(z, y, alpha=1.5), "alpha"),
        (lambda z, y, d: frame_cross_entropy(z, y, alpha=torch.ones(3)), "alpha"),
        (lambda z, y, d: frame_cross_entropy(z, y, alpha=torch.ones(5, dtype=torch.long)), "alpha"),
        (lambda z, y, d: frame_cross_entropy(z[:, :-1], y), "logits"),
        (lambda z, y, d: frame_cross_entropy(z[0], y), "logits"),
        (lambda z, y, d: frame_cross_entropy(z, y[..., None]), "target"),
        (lambda z, y, d: frame_cross_entropy(z.long(), y), "logits"),
        (lambda z, y, d: frame_cross_entropy(z, y.float()), "target"),
        (lambda z, y, d: frame_cross_entropy(z, y.bool()), "target"),
        (lambda z, y, d: frame_cross_entropy(z, y, lengths=torch.tensor([1])), "lengths"),
        (lambda z, y, d: frame_cross_entropy(z, y, lengths=torch.ones(3)), "lengths"),
        (lambda z, y, d: frame_cross_entropy(z, y, mask=torch.ones(3, 2, dtype=torch.bool)), "mask"),
        (lambda z, y, d: frame_cross_entropy(z, y, mask=torch.ones(y.shape)), "mask"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d[:, :-1]), "distance"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d.bool()), "distance"),
        (lambda z, y, d: streaming_anchor_loss(z, y, d.to(torch.complex64)), "distance"),
        (lambda z, y, d: StreamingAnchorLoss(variant="SAFL ", gamma=1.0), "variant"),
        (lambda z, y, d: FocalLoss(reduction="avg"), "reduction"),
        (lambda z, y, d: AnchorWeights(width_before=0.0), "width_before"),
    ],
)
def test_bad_arguments_raise_usage_error_naming_the_parameter(call, parameter):
    logits, target, distance, *_ = make_inputs(5)
    with pytest.raises(UsageError, match=f"`{parameter}`"):
        call(logits, target, distance)


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_no_class_at_all_is_a_usage_error_not_a_crash(variant):
    """C = 0 (an empty class dimension): a UsageError, also with every frame ignored."""
    logits, target = torch.randn(2, 30, 0), torch.full((2, 30), -100)
    distance = torch.zeros(2, 30, dtype=torch.int16)
    with pytest.raises(UsageError, match="`logits`.*C must be >= 1"):
        ours(logits, target, distance, variant=variant)


@pytest.mark.parametrize("num_classes", (1, 2, 3, 12))
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_a_target_outside_the_classes_at_a_valid_frame_is_a_usage_error(variant, num_classes):
    classes = max(num_classes, 2)
    for dtype in (torch.float32, torch.float64):
        logits, target, distance, *_ = make_inputs(num_classes, dtype=dtype)
        target[0, 1] = 0
        for bad in (classes, 7 + classes, -1, -99):
            target[1, 2] = bad
            with pytest.raises(UsageError, match=f"`target` holds {bad} at a valid frame"):
                ours(logits, target, distance, variant=variant)
            # the same frame ignored, masked or past `lengths`: fine
            mask = torch.ones_like(target, dtype=torch.bool)
            mask[1, 2] = False
            fine = [{"mask": mask}, {"lengths": torch.tensor([7, 2, 7])}, {"ignore_index": bad}]
            for extra in fine:
                assert torch.isfinite(ours(logits, target, distance, variant=variant, **extra))


def test_every_stored_integer_dtype_of_target_and_distance_gives_the_same_loss():
    logits, target, distance, _, lengths, _ = make_inputs(2, batch=3, frames=30, seed=6)
    target = target.clamp_min(0)  # uint8 cannot hold -100
    kw = dict(variant="safl", lengths=lengths, kernel="linear", width=4.0)
    want = streaming_anchor_loss(logits, target, distance, **kw)
    for target_dtype in (torch.int16, torch.int32, torch.int64, torch.uint8):
        for distance_dtype in (torch.int16, torch.int32, torch.int64, torch.float32):
            wide = distance.to(distance_dtype)
            if distance_dtype not in (torch.int16, torch.float32):  # wider types saturate too
                wide[wide.abs() == NO_ANCHOR] *= 40
            got = streaming_anchor_loss(logits, target.to(target_dtype), wide, **kw)
            assert torch.equal(got, want), (target_dtype, distance_dtype)


# --------------------------------------------------------------------------- dtypes, compile, import


@pytest.mark.parametrize("num_classes", [1, 2, 5])
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_bfloat16_autocast_is_finite_and_close_to_float32(variant, num_classes):
    torch.manual_seed(11)
    layer = torch.nn.Linear(16, num_classes)
    features = torch.randn(4, 30, 16)
    _, target, _, _, lengths, _ = make_inputs(num_classes, batch=4, frames=30, seed=11)
    distance = (torch.arange(30) - 10).expand(4, 30).to(torch.int16)
    squeeze = (lambda z: z[..., 0]) if num_classes == 1 else (lambda z: z)  # noqa: E731

    def loss_of(logits):
        return ours(squeeze(logits), target, distance, variant=variant, lengths=lengths)

    reference = loss_of(layer(features))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(features)
        loss = loss_of(logits)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(layer.weight.grad).all()
    torch.testing.assert_close(loss, reference, rtol=3e-2, atol=3e-3)


def _compiled_losses(z, y, d, n):
    return torch.stack([
        frame_cross_entropy(z, y, lengths=n),
        focal_loss(z, y, lengths=n),
        streaming_anchor_loss(z, y, d, variant="sal", lengths=n),
        streaming_anchor_loss(z, y, d, variant="sa+fl", lengths=n, kernel="box", width_before=2.0),
        streaming_anchor_loss(z, y, d, variant="safl", lengths=n, normalize="weights"),
    ])


def _check_compiled(backend: str, num_classes: int) -> None:
    if not torch._dynamo.is_dynamo_supported():
        pytest.skip(f"torch.compile is not supported on Python {sys.version_info[:2]} with torch {torch.__version__}")
    torch._dynamo.reset()
    compiled = torch.compile(_compiled_losses, backend=backend, fullgraph=True)
    logits, target, distance, _, lengths, _ = make_inputs(num_classes, dtype=torch.float32, seed=12)
    eager_z = logits.detach().clone().requires_grad_(True)
    compiled_z = logits.detach().clone().requires_grad_(True)
    eager = _compiled_losses(eager_z, target, distance, lengths)
    got = compiled(compiled_z, target, distance, lengths)
    torch.testing.assert_close(got, eager, rtol=1e-5, atol=1e-6)
    eager.sum().backward()
    got.sum().backward()
    torch.testing.assert_close(compiled_z.grad, eager_z.grad, rtol=1e-5, atol=1e-6)
    # compiled code checks targets with torch._assert_async (no host sync); on the CPU it raises
    # (inductor's own bounds check on the class gather may fire first, with its own message)
    bad = target.clone()
    bad[0, 0] = max(num_classes, 2)
    with pytest.raises(RuntimeError, match="target" if backend == "aot_eager" else ""):
        compiled(compiled_z, bad, distance, lengths)


@pytest.mark.parametrize("num_classes", [2, 5])
def test_torch_compile_fullgraph_smoke(num_classes):
    """No graph break and no host sync: dynamo traces every loss (with AOT autograd)."""
    _check_compiled("aot_eager", num_classes)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler")
@pytest.mark.parametrize("num_classes", [1, 5])
def test_torch_compile_inductor(num_classes):
    _check_compiled("inductor", num_classes)


def test_doctests():
    modules = [L, L.defaults, L.functional, L.kernels, L.modules]
    attempted = 0
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 20


def test_import_pulls_in_nothing_but_torch():
    code = (
        "import sys, torch; before = set(sys.modules); import anchorprep.loss; "
        "print(sorted(m for m in set(sys.modules) - before if not m.startswith('anchorprep')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for path in (REPO / "anchorprep" / "loss").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"numpy", "pandas", "pyarrow", "scipy"}, (path, name)


def test_import_and_a_loss_work_with_numpy_pandas_and_pyarrow_unimportable():
    """anchorprep.loss needs torch alone: run it with the data stack blocked at import."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'numpy', 'pandas', 'pyarrow'}:\n"
        "            raise ModuleNotFoundError(f'blocked: {name}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import torch, anchorprep.loss as L\n"
        "z = torch.zeros(1, 3, 2, requires_grad=True)\n"
        "loss = L.streaming_anchor_loss(z, torch.tensor([[0, 1, 1]]), torch.tensor([[-1, 0, 1]]))\n"
        "loss.backward()\n"
        "print(round(loss.item(), 4), sorted(m for m in sys.modules if m.split('.')[0] in {'numpy', 'pandas', 'pyarrow'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    value, blocked = out.stdout.strip().split(" ", 1)
    assert float(value) > 0 and blocked == "[]"
