"""The fused CPU kernel (anchorprep/loss/_fused.cpp) against the eager path it replaces."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch

from anchorprep.loss import _fused, streaming_anchor_loss
from test_loss import ALL_VARIANTS, ANCHOR_VARIANTS, REPO, make_inputs, masking_kwargs, ours

NUM_CLASSES = (1, 2, 3, 12)


@pytest.fixture(scope="module", autouse=True)
def fused_kernel():
    """The kernel builds on this machine (CI has a compiler and ninja): fail, don't skip."""
    assert _fused.status() == "fused", _fused.status()


def both_paths(variant, logits, target, distance, reduction, **kw):
    """(fused on float32 logits, eager on float64 logits): values and gradients of Σ weights·loss."""
    results = []
    for fused, dtype in ((True, torch.float32), (False, torch.float64)):
        z = logits.detach().to(dtype).requires_grad_(True)
        _fused.enabled = fused
        try:
            loss = ours(z, target, distance, variant=variant, reduction=reduction, **kw)
        finally:
            _fused.enabled = True
        weights = torch.linspace(0.5, 1.5, loss.numel(), dtype=dtype).reshape(loss.shape)
        (grad,) = torch.autograd.grad((loss * weights).sum(), z)
        results.append((loss, grad))
    return results


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("num_classes", NUM_CLASSES)
@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_fused_matches_eager_for_every_option(variant, num_classes, reduction):
    logits, target, distance, mask, lengths, alpha = make_inputs(num_classes, batch=4, frames=40, seed=5)
    options = itertools.product(
        ("none", "mask", "lengths", "both"), (None, alpha.float(), 0.3), ("frames", "weights"),
        (("linear", {"width": 5.0}), ("gaussian", {"width": 4.0, "width_before": 2.0}),
         ("box", {"width": 0.0}), ("exponential", {"width": 3.0})),
    )
    for masking, class_weights, normalize, (kernel, widths) in options:
        kw = masking_kwargs(masking, mask, lengths)
        if class_weights is not None:
            kw["alpha"] = class_weights
        if variant in ANCHOR_VARIANTS:
            kw.update(normalize=normalize, kernel=kernel, gamma=1.5, **widths)
        elif normalize == "weights" or kernel != "linear":
            continue  # nothing new for FCE/FL
        (loss, grad), (want_loss, want_grad) = both_paths(variant, logits, target, distance, reduction, **kw)
        context = (masking, class_weights, normalize, kernel)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss.double(), want_loss, rtol=2e-6, atol=1e-6, msg=lambda m: f"{context}: {m}")
        torch.testing.assert_close(grad.double(), want_grad, rtol=2e-5, atol=1e-6, msg=lambda m: f"{context}: {m}")


def test_which_calls_take_the_fused_path():
    """float32/bfloat16/float16 CPU logits, integer targets and (no or) integer distances."""
    y, d = torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3, dtype=torch.int16)
    z = torch.zeros(2, 3, 12)
    assert _fused.applies(z, y, d) and _fused.applies(z.bfloat16(), y.bool(), None)
    assert _fused.applies(z.half(), y.short(), d.long())
    assert not _fused.applies(z.double(), y, d)  # gradcheck: eager
    assert not _fused.applies(z, y, d.float())  # floating distances: the kernel formula


def test_double_backward_of_cross_entropy_losses_differentiates_the_eager_formula():
    """FCE and SAL with C > 2 keep torch's second derivative (e.g. for gradient penalties)."""
    logits, target, distance, _, lengths, _ = make_inputs(5, dtype=torch.float32)
    for variant in ("fce", "sal"):
        grads = []
        for fused in (True, False):
            _fused.enabled = fused
            try:
                z = logits.detach().clone().requires_grad_(True)
                loss = ours(z, target, distance, variant=variant, lengths=lengths)
                (g,) = torch.autograd.grad(loss, z, create_graph=True)
                (gg,) = torch.autograd.grad(g.pow(2).sum(), z)
            finally:
                _fused.enabled = True
            grads.append((g, gg))
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)
        assert grads[0][1].abs().sum() > 0


@pytest.mark.parametrize("distance_dtype", [torch.int16, torch.int32, torch.int64])
@pytest.mark.parametrize("target_dtype", [torch.int16, torch.int32, torch.int64, torch.uint8])
def test_fused_reads_every_stored_integer_dtype(distance_dtype, target_dtype):
    logits, target, distance, mask, lengths, _ = make_inputs(2, batch=3, frames=30, seed=6)
    target = target.clamp_min(0)  # uint8 cannot hold -100
    kw = dict(variant="safl", lengths=lengths, kernel="linear", width=4.0)
    z = logits.detach().float()
    want = streaming_anchor_loss(z, target, distance, **kw)
    wide = distance.to(distance_dtype)
    if distance_dtype != torch.int16:  # wider types saturate like the int16 shards do
        wide[wide.abs() == 32767] *= 40
    got = streaming_anchor_loss(z, target.to(target_dtype), wide, **kw)
    assert torch.equal(got, want)


def test_fused_result_does_not_depend_on_thread_count():
    """Fixed tiles summed in order: the same bits with 1 or 2 threads."""
    logits, target, distance, *_ = make_inputs(12, batch=64, frames=300, seed=7, dtype=torch.float32)
    lengths = torch.randint(1, 301, (64,))
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, max(2, threads)):
            torch.set_num_threads(n)
            z = logits.detach().clone().requires_grad_(True)
            loss = streaming_anchor_loss(z, target, distance, variant="safl", lengths=lengths)
            loss.backward()
            results.append((loss, z.grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


@pytest.mark.parametrize("num_classes", [1, 2, 5])
def test_fused_rejects_a_target_outside_the_classes(num_classes):
    logits, target, distance, *_ = make_inputs(num_classes, dtype=torch.float32)
    target[1, 2] = max(num_classes, 2)  # one past the last class, at a valid frame
    with pytest.raises(ValueError, match="outside 0"):
        streaming_anchor_loss(logits, target, distance, variant="sa+fl")
    target[1, 2] = -100  # the same frame ignored: fine
    assert torch.isfinite(streaming_anchor_loss(logits, target, distance, variant="sa+fl"))


def test_fused_without_gradient_matches_with_gradient():
    logits, target, distance, _, lengths, _ = make_inputs(12, batch=4, frames=50, dtype=torch.float32)
    with torch.no_grad():
        no_grad = streaming_anchor_loss(logits, target, distance, variant="safl", lengths=lengths)
    assert torch.equal(no_grad, streaming_anchor_loss(logits, target, distance, variant="safl", lengths=lengths))


def test_failed_build_warns_and_falls_back_to_eager(tmp_path):
    """No working compiler: a warning saying why, then the eager path gives the same loss."""
    code = (
        "import warnings, torch\n"
        "from anchorprep.loss import _fused, focal_loss\n"
        "z = torch.linspace(-3, 3, 40).reshape(2, 10, 2); y = (torch.arange(20).reshape(2, 10) % 2)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    loss = focal_loss(z, y)\n"
        "print(_fused.status().split(' ')[0]); print(loss.item())\n"
        "print(any('fused CPU kernel is unavailable' in str(w.message) for w in caught))\n"
    )
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), TORCH_EXTENSIONS_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    path, value, warned = out.stdout.split()
    z = torch.linspace(-3, 3, 40).reshape(2, 10, 2)
    y = torch.arange(20).reshape(2, 10) % 2
    from anchorprep.loss import focal_loss

    assert (path, warned) == ("eager", "True")
    assert float(value) == pytest.approx(focal_loss(z, y).item(), rel=1e-6)


def test_portable_build_without_avx2_matches(tmp_path):
    """Machines without AVX2 (ATEN_CPU_CAPABILITY=default) build ATen's generic vector code."""
    code = (
        "import torch, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_loss import make_inputs\n"
        "from anchorprep.loss import _fused, streaming_anchor_loss\n"
        "assert torch.backends.cpu.get_cpu_capability() == 'DEFAULT'\n"
        "assert '-mavx2' not in _fused._compiler_flags() and _fused.status() == 'fused', _fused.status()\n"
        "z, y, d, _, n, _ = make_inputs(12, batch=4, frames=50, seed=8, dtype=torch.float32)\n"
        "z = z.detach().requires_grad_(True)\n"
        "loss = streaming_anchor_loss(z, y, d, variant='safl', lengths=n); loss.backward()\n"
        "torch.save((loss.detach(), z.grad), sys.argv[1])\n"
    )
    out = tmp_path / "portable.pt"
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", TORCH_EXTENSIONS_DIR=str(tmp_path / "ext"))
    subprocess.run([sys.executable, "-c", code, str(out)], cwd=REPO, env=env, check=True)
    loss, grad = torch.load(out)
    z, y, d, _, n, _ = make_inputs(12, batch=4, frames=50, seed=8, dtype=torch.float32)
    z = z.detach().requires_grad_(True)
    want = streaming_anchor_loss(z, y, d, variant="safl", lengths=n)
    want.backward()
    torch.testing.assert_close(loss, want.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(grad, z.grad, rtol=1e-5, atol=1e-8)


def test_non_contiguous_logits_and_a_retained_graph():
    """Views as a model produces them (transposed heads, (B, T, 1)); backward twice accumulates."""
    gen = torch.Generator().manual_seed(2)
    target = torch.randint(0, 12, (3, 20), generator=gen)
    distance = torch.randint(-30, 30, (3, 20), generator=gen).to(torch.int16)
    cases = (((3, 20, 1), lambda z: z, target % 2), ((3, 2, 20), lambda z: z.transpose(1, 2), target % 2),
             ((20, 3, 12), lambda z: z.transpose(0, 1), target))
    for shape, view, y in cases:
        base = torch.randn(*shape, generator=gen)
        results = []
        for fused in (True, False):
            _fused.enabled = fused
            try:
                z = base.clone().requires_grad_(True)
                loss = streaming_anchor_loss(view(z), y, distance, variant="safl", reduction="none")
                loss.sum().backward(retain_graph=True)
                once = z.grad.clone()
                loss.sum().backward()
            finally:
                _fused.enabled = True
            results.append((loss.detach(), once, z.grad))
        (loss, once, twice), (want_loss, want_once, _) = results
        torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(once, want_once, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(twice, 2 * once)
