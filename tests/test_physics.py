import pytest
import torch

from clearsight.physics import Dehaze, Haze, dehaze, depth_from_transmission, haze, transmission_from_depth


def _batch(seed=0, c_t=1):
    g = torch.Generator().manual_seed(seed)
    J = torch.rand(3, 3, 17, 23, generator=g, dtype=torch.float64)
    depth = torch.rand(3, 1, 17, 23, generator=g, dtype=torch.float64) * 3
    beta = torch.rand(3, c_t, generator=g, dtype=torch.float64) + 0.2
    A = torch.rand(3, 3, generator=g, dtype=torch.float64) * 0.5 + 0.5
    return J, depth, beta, A


@pytest.mark.parametrize("c_t", [1, 3])
def test_round_trip_recovers_scene(c_t):
    J, depth, beta, A = _batch(c_t=c_t)
    t = transmission_from_depth(depth, beta)
    assert t.shape == (3, c_t, 17, 23)
    I = haze(J, t, A)
    assert I.min() >= 0 and I.max() <= 1
    assert torch.allclose(dehaze(I, t, A), J, atol=1e-5)
    # float32 too, with the true t and A
    J32, t32, A32 = J.float(), t.float(), A.float()
    assert (dehaze(haze(J32, t32, A32), t32, A32) - J32).abs().max() < 1e-5


def test_depth_transmission_inverse():
    _, depth, beta, _ = _batch()
    t = transmission_from_depth(depth, beta)
    assert torch.allclose(depth_from_transmission(t, beta), depth, atol=1e-9)


def test_airlight_shapes_broadcast():
    J, depth, beta, A = _batch()
    t = transmission_from_depth(depth, beta)
    a_map = A[:, :, None, None].expand(-1, -1, 17, 23)
    for a in (A, A[:, :, None, None], a_map):
        assert torch.allclose(haze(J, t, a), haze(J, t, A))
    assert torch.allclose(haze(J, t, 0.8), haze(J, t, torch.tensor([0.8, 0.8, 0.8])))


def test_modules_equal_functions():
    J, depth, beta, A = _batch()
    t = transmission_from_depth(depth, beta)
    assert torch.equal(Haze()(J, t, A), haze(J, t, A))
    assert torch.equal(Dehaze(0.1)(J, t, A), dehaze(J, t, A, 0.1))


def test_t_min_bounds_amplification():
    J, depth, beta, A = _batch()
    t = torch.full_like(depth, 0.01)
    I = haze(J, t, A)
    out = dehaze(I + 0.01, t, A, t_min=0.1)
    assert (out - dehaze(I, t, A, t_min=0.1)).abs().max() <= 0.1 + 1e-9


def test_gradcheck():
    J, depth, beta, A = _batch()
    J, A = J[:1, :, :5, :6].requires_grad_(), A[:1].requires_grad_()
    t = transmission_from_depth(depth[:1, :, :5, :6], beta[:1]).requires_grad_()
    assert torch.autograd.gradcheck(lambda j, tt, a: haze(j, tt, a), (J, t, A))
    assert torch.autograd.gradcheck(lambda i, tt, a: dehaze(i, tt, a), (J, t, A))


def test_bad_shapes_raise():
    from clearsight import ShapeError

    with pytest.raises(ShapeError, match="add a batch dimension"):
        haze(torch.rand(3, 8, 8), torch.rand(1, 8, 8), 0.9)
