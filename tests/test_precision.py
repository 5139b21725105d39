"""train.precision=bf16: the step's matrix products in bfloat16, everything else float32 (train.py autocast,
models.linear). Oracles: the same step's gradient in float64, and the float32 evaluation of saved weights."""
import copy

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO
from reproduce import models, train
from reproduce import data as data_mod
from reproduce.config import AEVBConfig, Config, DatasetConfig, Decoder, MCEMConfig, ModelConfig, Precision, TrainConfig
from reproduce.evaluate import evaluate, splits
from reproduce.jobs import Job, run_id
from reproduce.protocol import Algorithm
from reproduce.results import stored_config
from reproduce.objectives import sgvb_b
from test_robustness import tiny

pytestmark = pytest.mark.usefixtures("one_thread")


def step_gradients(encoder, decoder, x, eps, precision: Precision):
    """The AEVB loss (estimator B) and its gradient, under the training step's precision context."""
    cfg = Config(dataset=None, model=None, algorithm=AEVBConfig(), train=TrainConfig(precision=precision))
    with train.autocast(cfg):
        loss = -sgvb_b(encoder, decoder, x, eps=eps).elbo.mean()
    return loss, torch.autograd.grad(loss, [*encoder.parameters(), *decoder.parameters()])


@pytest.mark.parametrize("n_x, n_hidden, n_z, decoder", [(784, 500, 20, Decoder.bernoulli), (560, 200, 10, Decoder.gaussian)])
def test_bf16_step_gradient_is_within_bfloat16_rounding_of_the_float64_gradient(n_x, n_hidden, n_z, decoder):
    """Each parameter's gradient, relative to the float64 one (norm-wise): float32 ~3e-7; bf16 ~5e-3, i.e. about
    one bfloat16 unit roundoff (2^-8 = 3.9e-3) from rounding the products' inputs and outputs. The bound 2e-2
    (5 units) leaves room for other seeds; the floor 1e-4 fails where bf16 is not in effect at all."""
    encoder, dec = models.build(ModelConfig(n_z=n_z, n_hidden=n_hidden, decoder=decoder, init_std=0.05), n_x)
    x, eps = torch.rand(100, n_x), torch.randn(1, 100, n_z)
    enc64, dec64 = copy.deepcopy(encoder).double(), copy.deepcopy(dec).double()
    loss64, g64 = step_gradients(enc64, dec64, x.double(), eps.double(), Precision.fp32)

    def rel_error(g):
        return max(((a.double() - b).norm() / b.norm()).item() for a, b in zip(g, g64))

    loss32, g32 = step_gradients(encoder, dec, x, eps, Precision.fp32)
    loss16, g16 = step_gradients(encoder, dec, x, eps, Precision.bf16)
    assert loss16.dtype == torch.float32 and all(g.dtype == torch.float32 for g in g16)  # master weights' grads
    with train.autocast(Config(dataset=None, model=None, algorithm=AEVBConfig(), train=TrainConfig(precision=Precision.bf16))):
        mu, log_var = encoder(x)  # what the KL and the log-likelihood sums are formed from: float32
        out = dec.logits(mu) if decoder is Decoder.bernoulli else torch.cat(dec(mu), -1)
        assert mu.dtype == log_var.dtype == out.dtype == torch.float32
    assert rel_error(g32) < 1e-5
    assert 1e-4 < rel_error(g16) < 2e-2
    assert abs(loss16.item() - loss64.item()) < 1e-2 * abs(loss64.item())


def test_bf16_job_evaluates_in_float32(tmp_path):
    """A bf16 job's stored final bound equals the float32 evaluation of its saved weights, to the last bit."""
    cfg = tiny(tmp_path, precision=Precision.bf16)
    cfg.log.save_weights = True
    parquet = train.run(cfg)
    weights = torch.load(Job(cfg).weights)
    data = data_mod.load(cfg.dataset, cfg.device)
    encoder, decoder = models.build(cfg.model, data.n_x)
    encoder.load_state_dict(weights["encoder"]), decoder.load_state_dict(weights["decoder"])

    alg = Algorithm()
    alg.encoder, alg.decoder = encoder, decoder
    ours = evaluate(alg, splits(data, cfg), cfg, cfg.train.budget, final=True)
    rows = pd.read_parquet(parquet)
    last = rows[(rows.n_seen == rows.n_seen.max()) & (rows.metric == "lower_bound")].set_index("split").value
    assert last["train"] == ours[("train", "lower_bound")] and last["test"] == ours[("test", "lower_bound")]


def test_bf16_is_part_of_a_job_and_ids_made_before_the_option_are_unchanged(tmp_path):
    """A run published before train.precision existed (its id made by that code) keeps its id: the fp32 default is
    left out of the digest (jobs.DIGEST_OMITS), so its checkpoint and results are found again."""
    published = "mnist-aevb-nz3-s1-fd7df5d0"  # results/fig2_1e7, made at bb66255
    stored = yaml.safe_load((REPO / "results" / "fig2_1e7" / f"{published}.yaml").read_text())["config"]
    assert "precision" not in stored["train"] and run_id(stored_config(stored)) == published
    base = tiny(tmp_path)
    bf16 = copy.deepcopy(base)
    bf16.train.precision = Precision.bf16
    assert run_id(bf16) != run_id(base)


def test_bf16_is_refused_for_mcem_and_warns_without_bf16_units(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="train.precision"):
        Config(dataset=DatasetConfig(), model=ModelConfig(), algorithm=MCEMConfig(), train=TrainConfig(precision=Precision.bf16))
    monkeypatch.setattr("reproduce.config.cpu_has_bf16_units", lambda: False)
    with pytest.warns(UserWarning, match="without bfloat16 matrix units"):
        tiny(tmp_path, precision=Precision.bf16)
