import math, os, torch
from pynn_ttfs.engine import fast
MIN_SLOPE = float(os.environ.get("MIN_SLOPE", "0"))
COUNT = {"dropped": 0, "active": 0}
def patched(x, weights, T, grad_T, c, ratio, need_input, need_weight, cutoff=None, stats=None, **ignored):
    dtype = x.dtype
    active = (T < math.inf) & (grad_T != 0)
    T = torch.where(active, T, torch.full_like(T, -math.inf))
    lag = T.unsqueeze(1) - x.unsqueeze(2)
    causal = lag > 0
    lag = lag.clamp(min=0.0)
    e = torch.exp(-lag)
    assert ratio == 1.0
    kernel = lag * e
    slope_kernel = (1.0 - lag) * e * causal
    weighted_slope = slope_kernel * weights
    slope = weighted_slope.sum(dim=1)
    floor = math.sqrt(torch.finfo(dtype).eps) * c
    keep = slope >= MIN_SLOPE * c
    COUNT["dropped"] += int((active & ~keep).sum()); COUNT["active"] += int(active.sum())
    q = torch.where(active & keep, grad_T, torch.zeros_like(grad_T)) / torch.maximum(slope, floor)
    grad_x = (weighted_slope * q.unsqueeze(1)).sum(dim=2) if need_input else None
    grad_w = None
    if need_weight:
        q_w = fast._weight_scale(q, lambda: (kernel * causal).amax(dim=1), cutoff, stats)
        grad_w = -(kernel * q_w.unsqueeze(1)).sum(dim=0)
    return grad_x, grad_w
if MIN_SLOPE > 0:
    fast._gradients_dense_cpu = patched
    print("patched min slope", MIN_SLOPE, flush=True)
