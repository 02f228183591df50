"""UDAIR: codebook quantisation, straight-through gradients, prototypes, identification and test-time adaptation."""

from __future__ import annotations

import torch

from clearsight.models.udair import UDAIR, UDAIRConfig, VectorQuantizer


def test_quantising_a_code_returns_it():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 16).eval()
    codes = vq.embed.T.reshape(1, 4, 4, 8).clone()
    q, diff, ind = vq(codes)
    assert torch.equal(q, codes) and float(diff) == 0.0
    assert torch.equal(ind.flatten(), torch.arange(16))
    near = codes + 1e-3 * torch.randn_like(codes)
    q2, _, _ = vq(near)
    assert torch.allclose(vq(q2)[0], q2)  # idempotent


def test_codebook_moves_by_ema_only_in_training():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8)
    x = torch.randn(2, 3, 3, 4, requires_grad=True)
    before = vq.embed.clone()
    vq.eval()(x)
    assert torch.equal(vq.embed, before)
    q, _, _ = vq.train()(x)
    assert not torch.equal(vq.embed, before)
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight-through: the gradient passes unchanged
    vq.update = False
    after = vq.embed.clone()
    vq(x)
    assert torch.equal(vq.embed, after)


def test_straight_through_gradient_reaches_the_dam_encoder():
    torch.manual_seed(0)
    net = UDAIR(UDAIRConfig.tiny(), dropout=0.0).train()
    net.forward_train(torch.rand(2, 3, 32, 32))["image"].mean().backward()
    for conv in (net.dam.enc_b[0], net.dam.enc_t[0], net.dam.quantize_conv_t, net.dam.quantize_conv_b):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.adapter_parameters())  # adapters are idle outside TTA


def _net_with_prototypes() -> tuple[UDAIR, list[dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    net = UDAIR(UDAIRConfig.tiny(), tasks=("dark", "bright"), proto_size=32).eval()
    g = torch.Generator().manual_seed(1)

    def batch():
        dark = 0.15 * torch.rand(2, 3, 32, 32, generator=g)
        bright = 0.7 + 0.3 * torch.rand(2, 3, 32, 32, generator=g)
        return {"degraded": torch.cat([dark, bright]), "task": torch.tensor([0, 0, 1, 1])}

    net.fit_prototypes([batch() for _ in range(3)])
    return net, [batch() for _ in range(2)]


def test_prototypes_identify_the_degradation():
    net, held = _net_with_prototypes()
    assert net.proto_e4.shape == (2, 64, 4, 4) and net.proto_e2.shape == (2, 16, 16, 16)
    for b in held:
        p = net.identify(b["degraded"])
        assert p.shape == (4, 2) and torch.allclose(p.sum(1), torch.ones(4))
        assert torch.equal(p.argmax(1), b["task"])


def test_tta_trains_only_the_adapters_and_resets_exactly(monkeypatch):
    net, held = _net_with_prototypes()
    x = held[0]["degraded"][:2]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    plain = net(x)
    assert torch.allclose(net.restore_tta(x, steps=0), plain, atol=1e-6)  # zero-initialised residual adapters
    seen = []
    real_adamw = torch.optim.AdamW

    def spy(params, **kw):
        params = list(params)
        seen.append({id(p) for p in params})
        return real_adamw(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    out = net.restore_tta(x, steps=3, lr=1e-2)
    assert seen and all(s == {id(p) for p in net.adapter_parameters()} for s in seen)
    assert out.shape == x.shape and not torch.allclose(out, plain, atol=1e-5)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the per-image reset is exact
    assert not net.tta and not net.training
