"""The error that capq.patch adds, on the CPU in float64: softcap's tanh factor c = scale / softcap
multiplied into Q and rounded once to the input dtype, against the exact scores times c. One causal
300 x 300 call, 8 heads, D=128, softcap 20, q and k 1.5 * randn (test_varlen's case), v randn."""
import math

import torch

torch.manual_seed(0)
D, L, S, cap = 128, 300, 300, 20.0
c = D ** -0.5 / cap
mask = torch.ones(L, S, dtype=torch.bool).tril(S - L)
for dt in (torch.float16, torch.bfloat16):
    q, k = ((torch.randn(8, n, D) * 1.5).to(dt) for n in (L, S))
    v = torch.randn(8, S, D).to(dt)

    def run(qq, factor):
        t = cap * torch.tanh((qq.double() @ k.double().transpose(-1, -2)) * factor)
        t = t.masked_fill(~mask, -math.inf)
        return torch.softmax(t, -1) @ v.double(), torch.logsumexp(t, -1)

    o0, l0 = run(q, c)
    o1, l1 = run((q.float() * c).to(dt), 1.0)
    print(f"{dt}: lse max |diff| {(l1 - l0).abs().max().item():.2e}, out rel-norm {((o1 - o0).norm() / o0.norm()).item():.2e}")
