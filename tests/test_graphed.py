"""train.cuda_graph: the captured step (reproduce/graphed.py) against the plain loop's AEVB.step.

On the CPU the graph's body runs eagerly (the same code minus capture) and must follow the plain step draw
for draw; on a GPU (REPRODUCE_TEST_DEVICE=cuda makes these required) the replayed graph must too."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import needs_cuda
from reproduce import algorithms, graphed, models, optim, train
from reproduce.config import (AEVBConfig, Config, DatasetConfig, Dataset, Decoder, EvalConfig, LogConfig, ModelConfig,
                              TrainConfig, WakeSleepConfig, WandbMode)


def build(device="cpu", decoder=Decoder.bernoulli, warmup=0, compile=False, seed=0):
    """A small AEVB job's algorithm and generator, identical for identical arguments."""
    torch.manual_seed(seed)
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=3, n_hidden=16, decoder=decoder), algorithm=AEVBConfig(),
                 train=TrainConfig(adagrad_warmup=warmup, compile=compile), device=device)
    enc, dec = (m.to(device) for m in models.build(cfg.model, 12))
    gen = torch.Generator(device).manual_seed(1)
    return algorithms.build(cfg, enc, dec, 1000, gen), gen


def plain_steps(alg, gen, data, n, dynamic=False):
    """train.train_loop's step, verbatim: indices, gather, binarization, AEVB.step."""
    losses = []
    for _ in range(n):
        idx = torch.randint(0, len(data), (100,), generator=gen, device=data.device)
        x = data[idx]
        if dynamic:
            x = torch.bernoulli(x, generator=gen)
        losses.append(alg.step(x, idx)["loss"].item())
    return losses


def graphed_steps(step, n):
    return [step()["loss"].item() for _ in range(n)]


def flat(alg):
    return torch.cat([p.detach().flatten() for p in alg.opt.params])


def sums(alg):
    return torch.cat([alg.opt.opt.state[p]["sum"].flatten() for p in alg.opt.params])


def data(device="cpu"):
    return torch.rand(500, 12, generator=torch.Generator().manual_seed(2)).to(device)


@pytest.mark.parametrize("decoder,dynamic,warmup", [(Decoder.bernoulli, False, 0), (Decoder.bernoulli, True, 2),
                                                    (Decoder.gaussian, False, 0)])
def test_graph_body_follows_the_plain_step_on_cpu(one_thread, decoder, dynamic, warmup):
    """Same seed, same draws (indices, binarization, eps): losses, parameters, Adagrad sums and the generator
    agree after several steps, warm-up steps included."""
    x = data()
    alg_p, gen_p = build(decoder=decoder, warmup=warmup)
    alg_g, gen_g = build(decoder=decoder, warmup=warmup)
    init = flat(alg_p)
    l_p = plain_steps(alg_p, gen_p, x, 6, dynamic)
    l_g = graphed_steps(graphed.GraphedStep(alg_g, x, 100, dynamic, gen_g), 6)
    assert l_g == pytest.approx(l_p, rel=1e-6)
    assert (flat(alg_p) - init).abs().max() > 1e-3  # the steps moved the parameters
    torch.testing.assert_close(flat(alg_g), flat(alg_p), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(sums(alg_g), sums(alg_p), rtol=1e-6, atol=1e-9)
    assert torch.equal(gen_g.get_state(), gen_p.get_state())  # the same number of draws
    assert alg_g.opt.n_steps == alg_p.opt.n_steps == 6
    sd_p, sd_g = alg_p.state_dict()["opt"]["opt"]["state"], alg_g.state_dict()["opt"]["opt"]["state"]
    assert [float(s["step"]) for s in sd_g.values()] == [float(s["step"]) for s in sd_p.values()]


@pytest.mark.parametrize("weight_decay", [0.0, 1 / 50])
@pytest.mark.parametrize("fused", [True, False])
def test_foreach_adagrad_matches_torch_adagrad(weight_decay, fused):
    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(5, 3, generator=g), torch.randn(7, generator=g)]
    ref = [torch.nn.Parameter(p.clone()) for p in ours]
    opt = torch.optim.Adagrad(ref, lr=0.02, weight_decay=weight_decay, fused=fused or None, foreach=False if not fused else None)
    state_sums, steps = [torch.zeros_like(p) for p in ours], [torch.zeros(()) for _ in ours]
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for r, gr in zip(ref, grads):
            r.grad = gr.clone()
        opt.step()
        graphed.adagrad_(ours, grads, state_sums, steps, lr=0.02, weight_decay=weight_decay, eps=1e-10)
    for p, s, r in zip(ours, state_sums, ref):
        torch.testing.assert_close(p, r.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(s, opt.state[r]["sum"], rtol=1e-6, atol=1e-9)
    assert [float(s) for s in steps] == [float(opt.state[r]["step"]) for r in ref] == [5.0, 5.0]


def test_graph_body_counts_host_side_adagrad_steps(one_thread, monkeypatch):
    """Where torch has no fused Adagrad kernel for the device, its step counts are CPU scalars: counted
    outside the graph, after each step, so that the state_dict still matches the plain path's."""
    monkeypatch.setattr(optim, "fused_kernel", lambda device: False)
    alg, gen = build()
    assert not alg.opt.opt.param_groups[0]["fused"]
    step = graphed.GraphedStep(alg, data(), 100, False, gen)
    step.host_steps = [alg.opt.opt.state[p]["step"] for p in alg.opt.params]  # as they would be off the data's device
    graphed_steps(step, 3)
    assert [float(alg.opt.opt.state[p]["step"]) for p in alg.opt.params] == [3.0] * len(alg.opt.params)


def test_cuda_graph_is_refused_off_cuda_and_for_other_algorithms():
    model = ModelConfig(n_z=3, n_hidden=16)
    with pytest.raises(ValueError, match=r"train.cuda_graph.*needs a CUDA device \(device=cpu\)"):
        Config(dataset=DatasetConfig(), model=model, algorithm=AEVBConfig(), train=TrainConfig(cuda_graph=True))
    with pytest.raises(ValueError, match=r"train.cuda_graph.*AEVB step only \(algorithm=wake_sleep\)"):
        Config(dataset=DatasetConfig(), model=model, algorithm=WakeSleepConfig(), train=TrainConfig(cuda_graph=True), device="cuda")
    with pytest.raises(ValueError, match="train.compile_mode"):
        TrainConfig(cuda_graph=True, compile=True, compile_mode="reduce-overhead")
    with pytest.raises(ValueError, match="train.compile_mode"):
        TrainConfig(compile_mode="fast")
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        graphed.GraphedStep(build()[0], data(), 100, False, build()[1], capture=True)


def run_cfg(device: str, graph: bool, tmp: Path) -> Config:
    cfg = Config(dataset=DatasetConfig(name=Dataset.synthetic), model=ModelConfig(n_z=2, n_hidden=16),
                 algorithm=AEVBConfig(), train=TrainConfig(budget=6000, checkpoint_every=2000),
                 eval=EvalConfig(start=2000, is_k=5, is_k_final=10), log=LogConfig(wandb=WandbMode.disabled, progress=False,
                 results_dir=str(tmp / "results"), checkpoint_dir=str(tmp / "ckpt")), device=device)
    cfg.train.cuda_graph = graph  # set after validation: on the CPU the graph's body runs eagerly
    return cfg


def rows(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values(["n_seen", "split", "metric"]).reset_index(drop=True)


def test_train_loop_with_the_graph_hook_gives_the_plain_results_on_cpu(tmp_path, one_thread):
    plain = rows(train.run(run_cfg("cpu", False, tmp_path / "plain"), root=tmp_path))
    graph = rows(train.run(run_cfg("cpu", True, tmp_path / "graph"), root=tmp_path))
    pd.testing.assert_series_equal(graph.value, plain.value, rtol=1e-5)


@needs_cuda
@pytest.mark.parametrize("dynamic,warmup,compile", [(False, 0, False), (True, 2, False), (False, 0, True)])
def test_replayed_graph_follows_the_plain_step_on_cuda(dynamic, warmup, compile):
    x = data("cuda")
    alg_p, gen_p = build("cuda", warmup=warmup, compile=compile)
    alg_g, gen_g = build("cuda", warmup=warmup, compile=compile)
    step = graphed.GraphedStep(alg_g, x, 100, dynamic, gen_g)
    l_p, l_g = plain_steps(alg_p, gen_p, x, 40, dynamic), graphed_steps(step, 40)
    assert step.graph is not None  # captured, and replayed from step warmup + side_steps + 1 on
    assert l_g == pytest.approx(l_p, rel=1e-4)
    torch.testing.assert_close(flat(alg_g), flat(alg_p), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(sums(alg_g), sums(alg_p), rtol=1e-4, atol=1e-8)
    assert torch.equal(gen_g.get_state(), gen_p.get_state())  # each replay advanced the generator by one step's draws


@needs_cuda
def test_graphed_checkpoint_resumes_exactly_on_cuda():
    """State after 20 replays, loaded into a fresh job and its generator, continues as the uninterrupted run."""
    x = data("cuda")
    alg_a, gen_a = build("cuda")
    step_a = graphed.GraphedStep(alg_a, x, 100, False, gen_a)
    graphed_steps(step_a, 20)
    saved = {"algorithm": alg_a.state_dict(), "generator": gen_a.get_state()}
    saved = torch.load(_roundtrip(saved), weights_only=False)
    l_a = graphed_steps(step_a, 20)
    alg_b, gen_b = build("cuda", seed=5)  # different initial weights: the checkpoint must overwrite them
    alg_b.load_state_dict(saved["algorithm"])
    gen_b.set_state(saved["generator"])
    l_b = graphed_steps(graphed.GraphedStep(alg_b, x, 100, False, gen_b), 20)
    assert l_b == pytest.approx(l_a, rel=1e-5)
    torch.testing.assert_close(flat(alg_b), flat(alg_a), rtol=1e-5, atol=1e-7)
    assert torch.equal(gen_b.get_state(), gen_a.get_state())


def _roundtrip(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


@needs_cuda
def test_train_run_with_cuda_graph_matches_the_plain_run_on_cuda(tmp_path):
    plain = rows(train.run(run_cfg("cuda", False, tmp_path / "plain"), root=tmp_path))
    graph = rows(train.run(run_cfg("cuda", True, tmp_path / "graph"), root=tmp_path))
    pd.testing.assert_series_equal(graph.value, plain.value, rtol=1e-4)


def interrupted_then_resumed(cfg: Config, root: Path, monkeypatch) -> pd.DataFrame:
    """train.run stopped at its second evaluation (after the first one's checkpoint), then run again."""
    real, calls = train.evaluate, []

    def stop_at_second(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(train, "evaluate", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg, root=root)
    monkeypatch.setattr(train, "evaluate", real)
    return rows(train.run(cfg, root=root))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_graphed_run_resumes_from_its_checkpoint(tmp_path, one_thread, monkeypatch, device):
    """The graph is rebuilt (side-stream steps, capture) from the checkpoint's state and generator; the rows
    equal those of an uninterrupted graphed run."""
    whole = rows(train.run(run_cfg(device, True, tmp_path / "whole"), root=tmp_path))
    resumed = interrupted_then_resumed(run_cfg(device, True, tmp_path / "resumed"), tmp_path, monkeypatch)
    pd.testing.assert_series_equal(resumed.value, whole.value, rtol=1e-5)
