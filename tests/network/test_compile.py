"""torch.compile: the network traces as one graph (nnU-Net compiles it on CUDA by default)."""
import pytest
import torch

from nnunet_dyntransnet.network import DynTransNet


@pytest.mark.parametrize("attention,checkpointing", [("dmsa", {}), ("msa", {}), ("dmsa", {"activation_checkpointing": True}),
                                                    ("dmsa", {"selective_checkpointing": True})])
def test_no_graph_breaks(attention, checkpointing):
    torch._dynamo.reset()
    net = DynTransNet(1, 3, (16, 32, 32), (4, 8, 16, 16), [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)],
                      window_size=4, max_global_tokens=64, head_dim=4, attention=attention, **checkpointing)
    explanation = torch._dynamo.explain(net)(torch.randn(2, 1, 16, 32, 32))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.parametrize("selective", [False, True], ids=["plain", "selective-checkpointing"])
def test_compiled_training_step_matches_eager(selective):
    torch._dynamo.reset()
    torch.manual_seed(0)
    net = DynTransNet(1, 2, (8, 16, 16), (4, 8, 8), [(1, 1, 1), (2, 2, 2), (2, 2, 2)], head_dim=4, max_global_tokens=8,
                      window_size=2, selective_checkpointing=selective)
    x = torch.randn(2, 1, 8, 16, 16)
    weights = [torch.randn_like(o) for o in net(x)]  # a loss whose gradient differs per output element

    def gradients(model):
        net.zero_grad(set_to_none=True)
        outputs = model(x)
        sum((o * w).sum() for o, w in zip(outputs, weights)).backward()
        return outputs, {name: p.grad.clone() for name, p in net.named_parameters()}

    eager_out, eager_grads = gradients(net)
    out, grads = gradients(torch.compile(net, backend="aot_eager", fullgraph=True))
    for a, b in zip(out, eager_out):
        assert torch.allclose(a, b, atol=1e-5)
    assert set(grads) == set(eager_grads)
    for name, g in grads.items():
        assert torch.allclose(g, eager_grads[name], rtol=1e-4, atol=1e-6), name


def test_training_steps_do_not_recompile():
    """Three optimizer steps at one shape compile the network once (a guard failure would compile again)."""
    torch._dynamo.reset()
    compiles = []

    def counting_backend(gm, example_inputs):
        compiles.append(gm)
        return gm.forward

    torch.manual_seed(0)
    net = DynTransNet(1, 2, (8, 16, 16), (4, 8, 8), [(1, 1, 1), (2, 2, 2), (2, 2, 2)], head_dim=4, max_global_tokens=8,
                      window_size=2)
    compiled = torch.compile(net, backend=counting_backend)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(2, 1, 8, 16, 16)
    for _ in range(3):
        optimizer.zero_grad()
        sum(o.square().mean() for o in compiled(x)).backward()
        optimizer.step()
    assert len(compiles) == 1
