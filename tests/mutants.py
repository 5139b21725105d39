"""Mutation check: does the default suite fail when the reproduction is wrong?

    python tests/mutants.py [--list] [--only NAME ...] [--jobs N]

Each mutant is one single-point change of the kind a careless reimplementation makes (a sign, a weight, a
factor of N, which network a phase updates, which samples feed which phase, an off-by-one split, an accept
rule, the init scale, a scaling constant). For each, the repository's files (git ls-files: tracked, plus
untracked ones that are not ignored) are copied to a temporary directory, the one change is applied there,
and the default suite runs there (cwd and PYTHONPATH the copy, so the mutated code is what is imported, by
the tests and by their subprocesses), the oracle files first, with -x: a killed mutant dies in seconds, a
survivor runs the whole default suite (see run_one). Exit status 1 if a mutant survives that is not a documented
equivalent mutant, 2 if a mutant's original snippet no longer occurs exactly once (a refactor made it
stale: update the list). Not collected by pytest (no test_ prefix); tests/test_mutants_current.py checks
the snippets cheaply in the default suite."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
ORACLES = ["tests/test_oracles_training.py", "tests/test_oracles_paper.py", "tests/test_oracles_data.py"]


class Mutant(NamedTuple):
    name: str
    file: str  # relative to the repository root
    original: str  # must occur exactly once in file
    replacement: str
    description: str
    equivalent: str = ""  # non-empty: why surviving is expected (a documented equivalent mutant)


M = Mutant
MUTANTS: list[Mutant] = [
    # --- models ---
    M("init_weights_only", "reproduce/models.py", "    for p in module.parameters():\n        nn.init.normal_(p, 0.0, std)",
      "    for p in module.parameters():\n        if p.dim() > 1:\n            nn.init.normal_(p, 0.0, std)",
      "biases keep PyTorch's default init, only weights ~ N(0, 0.01^2)"),
    M("init_std_default", "reproduce/config.py", "init_std: float = 0.01", "init_std: float = 0.1", "init scale 0.1 instead of 0.01"),
    M("init_var_as_std", "reproduce/models.py", "nn.init.normal_(p, 0.0, std)", "nn.init.normal_(p, 0.0, std**2)",
      "0.01 read as the variance's square: std 1e-4"),
    M("bernoulli_sign", "reproduce/models.py", "(x * logits - softplus(logits))", "(x * logits - softplus(-logits))",
      "Bernoulli log-likelihood with the wrong softplus sign"),
    M("gaussian_mean_no_sigmoid", "reproduce/models.py", "return torch.sigmoid(a), log_var", "return a, log_var",
      "Frey decoder mean not squashed to (0, 1)"),
    M("gaussian_logprob_var", "reproduce/models.py", "(x - mu).square() * (-log_var).exp()", "(x - mu).square() * (-0.5 * log_var).exp()",
      "Gaussian log density divides by sigma, not sigma^2"),
    M("reparam_log_sigma", "reproduce/objectives.py", "return mu + (0.5 * log_var).exp() * eps", "return mu + log_var.exp() * eps",
      "encoder output read as log sigma in the reparameterisation"),
    # --- objectives ---
    M("kl_sign", "reproduce/objectives.py", "1 + log_var - mu.square() - log_var.exp()", "1 + log_var - mu.square() + log_var.exp()",
      "analytic KL with a sign error"),
    M("aevb_kl_weight", "reproduce/algorithms.py", "return -self.estimator(self.encoder, self.decoder, x, self.L, eps=eps).elbo.mean()",
      "t = self.estimator(self.encoder, self.decoder, x, self.L, eps=eps)\n        return -(t.log_px_z - 0.5 * t.kl).mean()",
      "training loss weighs the KL term by 1/2"),
    M("aevb_no_kl", "reproduce/algorithms.py", "return -self.estimator(self.encoder, self.decoder, x, self.L, eps=eps).elbo.mean()",
      "return -self.estimator(self.encoder, self.decoder, x, self.L, eps=eps).log_px_z.mean()",
      "training loss without the KL term (an autoencoder)"),
    M("sgvb_b_sum_over_L", "reproduce/objectives.py", "return ElboTerms(decoder.log_prob(x, z).mean(0), gaussian_kl(mu, log_var))",
      "return ElboTerms(decoder.log_prob(x, z).sum(0), gaussian_kl(mu, log_var))", "sum over the L samples instead of the mean"),
    M("sgvb_a_no_prior", "reproduce/objectives.py", "(gaussian_log_prob(z, mu, log_var) - standard_normal_log_prob(z)).mean(0)",
      "gaussian_log_prob(z, mu, log_var).mean(0)", "estimator A without log p(z)"),
    M("estimator_b_is_a", "reproduce/objectives.py", "SGVB = {Estimator.A: sgvb_a, Estimator.B: sgvb_b}",
      "SGVB = {Estimator.A: sgvb_a, Estimator.B: sgvb_a}",
      "estimator B (the paper's) silently runs A"),
    M("aevb_no_noise", "reproduce/algorithms.py", "eps = torch.randn((self.L, len(x), self.n_z), generator=self.generator, device=x.device)",
      "eps = torch.zeros((self.L, len(x), self.n_z), device=x.device)", "AEVB trains with z = mu (no sampling)"),
    M("aevb_decoder_only", "reproduce/algorithms.py", "self.opt = adagrad(cfg.train, [*encoder.parameters(), *decoder.parameters()], n_train)",
      "self.opt = adagrad(cfg.train, [*decoder.parameters()], n_train)", "AEVB never updates the encoder"),
    # --- optimizer ---
    M("wd_one_over_m", "reproduce/optim.py", "wd = 1.0 / n_train if", "wd = 1.0 / train.batch_size if",
      "weight decay 1/M instead of 1/N"),
    M("wd_two_over_n", "reproduce/optim.py", "wd = 1.0 / n_train if", "wd = 2.0 / n_train if", "prior term ||theta||^2 / N instead of / (2N)"),
    M("wd_off", "reproduce/config.py", "weight_prior: bool = True", "weight_prior: bool = False", "no N(0, I) parameter prior by default"),
    M("warmup_off_by_one", "reproduce/optim.py", "if self.n_steps < self.warmup:", "if self.n_steps <= self.warmup:",
      "one warm-up step too many (with warm-up 0 the first step never moves)"),
    M("lr_default", "reproduce/config.py", "lr: float = 0.02", "lr: float = 0.03", "step size outside the paper's {0.01, 0.02, 0.1}"),
    M("frey_lr", "conf/dataset_model/frey_mlp.yaml", "  lr: 0.01", "  lr: 0.05", "Frey step size outside the paper's set"),
    M("batch_size", "reproduce/config.py", "batch_size: int = 100  # M", "batch_size: int = 128  # M", "M = 128 instead of 100"),
    M("frey_hidden", "conf/dataset_model/frey_mlp.yaml", "n_hidden: 200", "n_hidden: 500", "Frey Face with MNIST's 500 hidden units"),
    # --- wake-sleep ---
    M("wake_z_from_prior", "baselines/wake_sleep.py", "z = reparameterize(*self.encoder(x), 1, self.generator)[0]  # [M, n_z]",
      "z = torch.randn((1, len(x), self.decoder.hidden.in_features), generator=self.generator)[0]",
      "wake phase draws z from the prior instead of q(z|x)"),
    M("wake_z_mean", "baselines/wake_sleep.py", "z = reparameterize(*self.encoder(x), 1, self.generator)[0]  # [M, n_z]",
      "z = self.encoder(x)[0]", "wake phase uses the mean of q instead of a draw"),
    M("wake_grad_into_q", "baselines/wake_sleep.py", "        with torch.no_grad():\n            z = reparameterize(",
      "        if True:\n            z = reparameterize(", "wake phase lets the gradient flow into q"),
    M("sleep_x_mean", "baselines/wake_sleep.py", "return z, self.decoder.sample(z, self.generator)", "return z, self.decoder.mean(z)",
      "sleep phase dreams x as the decoder mean, not a sample"),
    M("sleep_sum", "baselines/wake_sleep.py", "loss = -self.encoder.log_prob(*self.dream(m)).mean()",
      "loss = -self.encoder.log_prob(*self.dream(m)).sum()", "sleep loss summed over M (the prior's weight drops to 1/(NM))"),
    M("sleep_z_uniform", "baselines/wake_sleep.py", "z = torch.randn(m, n_z, generator=self.generator, device=self.generator.device)",
      "z = torch.rand(m, n_z, generator=self.generator, device=self.generator.device)", "dreams z ~ U(0, 1) instead of N(0, I)"),
    M("wake_opt_on_encoder", "baselines/wake_sleep.py", "self.wake_opt = adagrad(cfg.train, decoder.parameters(), n_train)",
      "self.wake_opt = adagrad(cfg.train, [*encoder.parameters(), *decoder.parameters()], n_train)",
      "the wake optimizer also holds the encoder"),
    # --- MCEM ---
    M("mcem_one_update", "baselines/mcem.py", "for _ in range(self.n_updates):", "for _ in range(1):", "one decoder update per iteration, not n_updates"),
    M("mcem_updates_default", "reproduce/config.py", "n_updates: int = 5", "n_updates: int = 1", "MCEM default 1 update instead of the paper's 5"),
    M("mcem_count_gradients", "reproduce/config.py", "return self.n_leapfrog + 1 + self.n_updates", "return self.n_leapfrog + self.n_updates",
      "MCEM's gradient count misses the leapfrog's extra gradient evaluation"),
    M("mcem_leapfrog_default", "reproduce/config.py", "n_leapfrog: int = 10", "n_leapfrog: int = 4", "MCEM with 4 leapfrog steps instead of 10"),
    M("mcem_not_persistent", "baselines/mcem.py",
      "self.z[idx], self.step_size[idx] = z, adapt_step_size(self.step_size[idx], accept, self.target, self.rate)",
      "self.step_size[idx] = adapt_step_size(self.step_size[idx], accept, self.target, self.rate)",
      "chains not stored: every iteration restarts from the initial states"),
    M("mcem_fresh_start", "baselines/mcem.py", "hmc_step(log_joint, self.z[idx],", "hmc_step(log_joint, torch.randn_like(self.z[idx]),",
      "chains restart from the prior every iteration"),
    M("mcem_chain_by_position", "baselines/mcem.py", "hmc_step(log_joint, self.z[idx],", "hmc_step(log_joint, self.z[: len(idx)],",
      "chains looked up by minibatch position, not datapoint index"),
    M("mcem_no_prior", "baselines/mcem.py", "log_joint = lambda z: standard_normal_log_prob(z) + self.decoder.log_prob(x, z)",
      "log_joint = lambda z: self.decoder.log_prob(x, z)", "HMC targets p(x|z) without the prior"),
    M("mcem_sum", "baselines/mcem.py", "loss = -self.decoder.log_prob(x, z).mean()", "loss = -self.decoder.log_prob(x, z).sum()",
      "decoder loss summed over M (the prior's weight drops to 1/(NM))"),
    M("mcem_chains_not_checkpointed", "baselines/mcem.py", 'saved = ("decoder", "opt", "z", "step_size")',
      'saved = ("decoder", "opt", "step_size")', "a resumed MCEM job restarts its chains from the initial states"),
    # --- IWAE (beyond the paper; docs/extending.md) ---
    M("iwae_mean_log_weights", "baselines/iwae.py", "return torch.logsumexp(log_w, 0) - math.log(len(eps))", "return log_w.mean(0)",
      "the mean of the K log weights (a K-sample ELBO) instead of the log of their mean"),
    M("iwae_z_detached", "baselines/iwae.py", "z = reparameterize(mu, log_var, len(eps), eps=eps)",
      "z = reparameterize(mu.detach(), log_var.detach(), len(eps), eps=eps)", "no reparameterisation gradient into q"),
    # --- HMC ---
    M("hmc_kinetic_sign", "reproduce/hmc.py",
      "log_ratio = (log_prob_prop - 0.5 * v_prop.square().sum(-1)) - (log_prob - 0.5 * v.square().sum(-1))",
      "log_ratio = (log_prob_prop + 0.5 * v_prop.square().sum(-1)) - (log_prob + 0.5 * v.square().sum(-1))",
      "Hamiltonian with the kinetic energy's sign flipped"),
    M("hmc_no_kinetic", "reproduce/hmc.py",
      "log_ratio = (log_prob_prop - 0.5 * v_prop.square().sum(-1)) - (log_prob - 0.5 * v.square().sum(-1))",
      "log_ratio = log_prob_prop - log_prob", "Metropolis ratio without the kinetic energy"),
    M("hmc_accept_inverted", "reproduce/hmc.py", "torch.where((u < accept_prob).unsqueeze(-1), z_prop, z)",
      "torch.where((u > accept_prob).unsqueeze(-1), z_prop, z)", "accept with probability 1 - a"),
    M("hmc_always_accept", "reproduce/hmc.py", "torch.where((u < accept_prob).unsqueeze(-1), z_prop, z)",
      "torch.where((u < 2.0).unsqueeze(-1), z_prop, z)", "no Metropolis correction: always accept"),
    M("leapfrog_full_last", "reproduce/hmc.py", "(0.5 if i == n_leapfrog - 1 else 1.0) * step_size * grad",
      "1.0 * step_size * grad", "leapfrog without the closing half step"),
    M("leapfrog_full_first", "reproduce/hmc.py", "v = v + 0.5 * step_size * grad  # half step", "v = v + step_size * grad  # half step",
      "leapfrog opens with a full momentum step"),
    M("hmc_momentum_scale", "reproduce/hmc.py", "v = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)",
      "v = 0.5 * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)", "momentum ~ N(0, I/4)"),
    M("hmc_grad_sign", "reproduce/hmc.py", "(grad,) = torch.autograd.grad(log_prob.sum(), z)", "(grad,) = torch.autograd.grad(-log_prob.sum(), z)",
      "leapfrog follows the gradient of the energy with the wrong sign"),
    M("adapt_sign", "reproduce/hmc.py", "torch.exp(rate * (accept_prob - target))", "torch.exp(rate * (target - accept_prob))",
      "step size adapted away from the target acceptance"),
    # --- estimators and evaluation ---
    M("tanh_half_slope", "reproduce/models.py", "return torch.sigmoid(y * 2).mul_(2).sub_(1)",
      "return torch.sigmoid(y).mul_(2).sub_(1)", "tanh written as 2 sigmoid(y) - 1 (half the slope)"),
    M("gaussian_log_var_bias_ignored", "reproduce/models.py",
      "a, b = (out, self.log_var_bias.expand_as(out)) if self.log_var_bias is not None else out.chunk(2, dim=-1)",
      "a, b = (out, torch.zeros_like(out)) if self.log_var_bias is not None else out.chunk(2, dim=-1)",
      "model.log_var=bias ignores its learned log-variances"),
    M("is_log_k_chunk", "reproduce/marginal_likelihood.py", "return log_sum - math.log(k)", "return log_sum - math.log(k_chunk)",
      "IS normalised by the chunk's k"),
    M("elbo_plus_kl", "reproduce/marginal_likelihood.py", "out.append(decoder.log_prob(xc, z).mean(0) - gaussian_kl(mu, log_var))",
      "out.append(decoder.log_prob(xc, z).mean(0) + gaussian_kl(mu, log_var))", "evaluated bound adds the KL"),
    M("elbo_drop_remainder", "reproduce/marginal_likelihood.py", "for xc, ec in zip(x.split(rows), normal_chunks(",
      "for xc, ec in zip(x[: len(x) // rows * rows].split(rows), normal_chunks(",
      "evaluation skips the last partial chunk"),
    M("eval_train_subset", "reproduce/evaluate.py", "train = data.train[: cfg.eval.train_subset] if cfg.eval.train_subset else data.train",
      "train = data.train[: cfg.eval.train_subset or 1000]", "training bound on the first 1000 points only"),
    M("kde_halves", "reproduce/marginal_likelihood.py", "z_fit, z_eval = z[: len(z) // 2], z[len(z) // 2 :]", "z_fit, z_eval = z, z",
      "density fitted and evaluated on the same samples"),
    M("hm_log_len", "reproduce/marginal_likelihood.py", "-(log_ratio.logsumexp(0) - math.log(len(z_eval)))", "-(log_ratio.logsumexp(0) - math.log(len(z)))",
      "harmonic mean normalised by all L samples, not the second half"),
    M("kde_scott", "reproduce/marginal_likelihood.py", "n_fit ** (-1.0 / (n_z + 4))", "n_fit ** (-1.0 / (n_z + 2))", "KDE bandwidth not Scott's rule"),
    M("hmc_eval_leapfrog", "reproduce/config.py", "hmc_leapfrog: int = 4", "hmc_leapfrog: int = 10", "Fig. 3 HMC with 10 leapfrog steps, not 4"),
    M("is_k_final", "reproduce/config.py", "is_k_final: int = 5000", "is_k_final: int = 1000", "final IS with k = 1000, not 5000"),
    # --- data ---
    M("mnist_last_50k", "reproduce/data.py", "return scale(train[:N_MNIST_TRAIN]), scale(test)", "return scale(train[-N_MNIST_TRAIN:]), scale(test)",
      "MNIST training images are the last 50,000"),
    M("mnist_255", "reproduce/data.py", "reshape(len(t), -1).float() / 256.0", "reshape(len(t), -1).float() / 255.0",
      "MNIST scaled by 1/255"),
    M("frey_255", "reproduce/data.py", '["ff"].T.copy()).float() / 256.0', '["ff"].T.copy()).float() / 255.0', "Frey Face scaled by 1/255"),
    M("frey_reshape", "reproduce/data.py", 'scipy.io.loadmat(str(path))["ff"].T.copy()', 'scipy.io.loadmat(str(path))["ff"].reshape(-1, 560).copy()',
      "Frey frames read by reshape instead of transpose (scrambled faces)"),
    M("frey_test_first", "reproduce/data.py", "return ff[: -cfg.frey_n_test], ff[-cfg.frey_n_test :]",
      "return ff[cfg.frey_n_test :], ff[: cfg.frey_n_test]", "contiguous split holds out the first frames"),
    M("frey_split_default", "reproduce/config.py", "frey_split: FreySplit = FreySplit.random", "frey_split: FreySplit = FreySplit.contiguous",
      "Frey default split contiguous"),
    M("n_train_last", "reproduce/data.py", "train = train[: cfg.n_train]", "train = train[-cfg.n_train :]", "n_train keeps the last points"),
    M("static_threshold", "reproduce/data.py", "train, test = (torch.bernoulli(t, generator=g) for t in (train, test))",
      "train, test = ((t > 0.5).float() for t in (train, test))", "static binarization by thresholding at 1/2"),
    M("static_train_only", "reproduce/data.py", "train, test = (torch.bernoulli(t, generator=g) for t in (train, test))",
      "train = torch.bernoulli(train, generator=g)", "static binarization of the training set only"),
    M("static_unseeded", "reproduce/data.py", "g = torch.Generator().manual_seed(cfg.split_seed)", "g = None",
      "static binarization redrawn at every load"),
    # --- one writer per job, validation ---
    M("lock_per_process", "reproduce/jobs.py", 'self.lock_file = self.results / f"{self.id}.lock"',
      'self.lock_file = self.results / f"{self.id}.{os.getpid()}.lock"', "every process locks a file of its own: no exclusion"),
    M("lock_ignored", "reproduce/train.py", "    with job.lock() as mine:\n        if not mine:", "    with job.lock() as mine:\n        if False:",
      "a job whose lock another process holds trains anyway"),
    M("atomic_fixed_tmp", "reproduce/jobs.py", "    tmp = temporary(path)\n", '    tmp = path.with_name(path.name + ".tmp")\n',
      "every writer of a file uses the same temporary name"),
    M("checkpoint_every_zero", "reproduce/config.py", "_check(self.checkpoint_every > 0,", "_check(self.checkpoint_every >= 0,",
      "train.checkpoint_every=0 accepted (a checkpoint every step)"),
    # --- training loop ---
    M("minibatch_first_m", "reproduce/train.py", "idx = torch.randint(0, len(train_x), (M,), generator=gen, device=train_x.device)",
      "idx = torch.randint(0, M, (M,), generator=gen, device=train_x.device)", "minibatches drawn from the first M points only"),
    M("minibatch_no_replacement_fixed", "reproduce/train.py", "idx = torch.randint(0, len(train_x), (M,), generator=gen, device=train_x.device)",
      "idx = (torch.arange(M, device=train_x.device) + M * int(torch.randint(0, len(train_x) // M, (1,), generator=gen))) % len(train_x)",
      "minibatches are contiguous blocks of the training set, not independent random points"),
    M("eta_resumed_from_zero", "reproduce/callbacks.py", 'int(m["n_start"]) if "n_start" in m and self.this_sweep(j) else self.seen0[j.num]', "self.seen0[j.num]",
      "the sweep's time left counts a resumed job's samples before its checkpoint as trained this sweep (far too soon)"),
    M("n_start_is_zero", "reproduce/train.py", '"n_start": n_start, "wall_s"', '"n_start": 0, "wall_s"',
      "a resumed job's final meta says its process started it from zero"),
    # --- precision ---
    M("bf16_never_on", "reproduce/train.py", "enabled=cfg.train.precision is Precision.bf16)", "enabled=False)",
      "train.precision=bf16 silently trains in float32"),
    M("bf16_evaluation", "reproduce/train.py", 'with clock.phase("eval"):', 'with clock.phase("eval"), autocast(cfg):',
      "evaluation runs in bfloat16 under train.precision=bf16"),
    M("bf16_reductions", "reproduce/models.py", "return layer(x).to(layer.weight.dtype)", "return layer(x)",
      "under bf16 the activations, log-likelihood sums and KL are bfloat16"),
    M("full_vb_local_variance_as_sd", "reproduce/full_vb.py", "return y + var.sqrt() * torch.randn(", "return y + var * torch.randn(",
      "the local reparameterisation trick scales its noise by the variance, not the standard deviation"),
    M("full_vb_predictive_mean_of_logs", "reproduce/full_vb.py", "per_theta.logsumexp(0) - math.log(draws)", "per_theta.mean(0)",
      "the posterior predictive averages log p(x|theta) over theta draws instead of p(x|theta)"),
    M("fig3_gap_last_point", "reproduce/tables.py", 'n = cell.groupby("algorithm").n_seen.max().min()',
      'n = cell.n_seen.max()', "the Figure 3 gap table reads every curve at the furthest point, not the last common one"),
    M("fig3_beyond_same_width", "reproduce/figures.py", "if not set(data.algorithm) <= set(FIG3) else {}", "if False else {}",
      "Figure 3 draws algorithms beyond the paper like the paper's three"),
    M("palette_reuses_paper_colour", "reproduce/figures.py", "if c not in taken)", "if c not in PALETTE.values())",
      "an algorithm beyond the paper takes the colour of one of the paper's (tab10 hex vs colour names)"),
    M("comparison_first_sweep", "reproduce/paper.py", "matched(r, most_seeds(pd.DataFrame(hits), sweeps[r.figure]))",
      "matched(r, pd.DataFrame(hits))", "the comparison pools every sweep's runs at a point, not the one with most seeds"),
    M("fig2_table_wide_match", "reproduce/tables.py", "d[np.abs(np.log(d.n_seen / point)) <= math.log(TOL)]",
      "d[np.abs(np.log(d.n_seen / point)) <= math.log(2 * TOL)]",
      "figure2_table.md averages evaluations up to 2.2x away from the paper's point (1.58e7 counted as 1e7)"),
    # --- start-up ---
    M("cli_loads_torch_first", "reproduce/cli.py", "from reproduce.jobs import job_name\n",
      "from reproduce import train\nfrom reproduce.jobs import job_name\n", "the command line loads torch before it checks a value"),
    M("device_check_loads_torch", "reproduce/config.py", '    if device == "cpu":\n        return "cpu"\n', "",
      "every config loads torch to read device=cpu"),
    # --- provenance ---
    M("commit_ignores_copy", "reproduce/jobs.py", '    if os.environ.get("REPRODUCE_COMMIT"):\n',
      '    if False:\n', "a copy of the suite with a stale .git records that .git's HEAD, not the commit it was given"),
    M("commit_dirty_by_checkpoints", "reproduce/jobs.py", '"--", ".", ":!checkpoints"]', '"--", "."]',
      "a resumed job's committed checkpoint, rewritten, marks the code of every later job dirty"),
    M("gpu_commit_never_dirty", "reproduce/bench/gpu_setup.sh", 'print(head + ("-dirty" if differ else ""))',
      "print(head)", "a GPU machine's copy that differs from its commit records the clean commit"),
]


# Run before the others: if this mutant survives, the copies import some other code than the mutated one.
CANARY = Mutant("canary", "reproduce/objectives.py", "from typing import NamedTuple\n",
                "from typing import NamedTuple\nraise RuntimeError('mutation canary: the mutated copy is imported')\n",
                "import-time failure: proves the suite runs the mutated copy")


def source_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True)
    # not checkpoints/: a long run's committed state, large, rewritten while the check runs
    return [f for f in out.stdout.splitlines() if (REPO / f).is_file() and not f.startswith("checkpoints/")]


class StaleMutant(RuntimeError):
    pass


def check(m: Mutant, root: Path = REPO) -> str:
    """The file's text; raises StaleMutant unless the original snippet occurs exactly once."""
    path = root / m.file
    if not path.exists():
        raise StaleMutant(f"mutant {m.name}: {m.file} does not exist")
    text = path.read_text()
    n = text.count(m.original)
    if n != 1:
        raise StaleMutant(f"mutant {m.name}: its original snippet occurs {n} times in {m.file} (need exactly 1); "
                          f"update it in tests/mutants.py:\n{m.original}")
    return text


# minutes of subprocess runs and training: last, so that a fast unit test that fails stops -x before them
SLOW_LAST = ["tests/test_wake_sleep.py", "tests/test_mcem.py", "tests/test_bad_input.py", "tests/test_bench.py",
             "tests/test_tracking.py", "tests/test_pipeline.py"]


def test_files(root: Path) -> list[str]:
    """The rest of the default suite, after the oracle files: unit tests first, the slow files last."""
    rest = sorted(str(p.relative_to(root)) for p in (root / "tests").glob("test_*.py"))
    # test_mutants_current checks this list, not the code: in a copy it fails for the very snippet that was
    # mutated, which would count every mutant as killed
    rest = [f for f in rest if f not in ORACLES and f != "tests/test_mutants_current.py"]
    return sorted(rest, key=lambda f: SLOW_LAST.index(f) + 1 if f in SLOW_LAST else 0)


def run_one(m: Mutant, files: list[str], data: str, timeout: float) -> tuple[str, float, str]:
    """(killed | survived | timeout, seconds, first failing test) for one mutant in its own copy.

    Two pytest runs, both -x: the oracle files alone, then (only if they pass) the rest of the default suite
    (pyproject's addopts keep -m 'not slow'). Collecting every test module costs as much as the oracles take
    to fail, so the first run alone is what a killed mutant usually costs."""
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as tmp:
        root = Path(tmp) / "repo"
        for f in files:
            if (REPO / f).is_file():  # (a file deleted in the working tree since the listing stays deleted)
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / f, root / f)
        path = root / m.file
        path.write_text(check(m, root).replace(m.original, m.replacement))
        env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "REPRODUCE_DATA": data, "PYTHONDONTWRITEBYTECODE": "1"}
        for stage in (ORACLES, test_files(root)):
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *stage]
            try:
                p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                return "timeout", time.time() - t0, ""
            if p.returncode != 0:
                failed = [line.split(" ", 1)[1].split(" - ")[0] for line in p.stdout.splitlines()
                          if line.startswith(("FAILED ", "ERROR "))]
                last = (p.stdout.strip().splitlines() or [""])[-1][:100]
                return "killed", time.time() - t0, failed[0] if failed else last
    return "survived", time.time() - t0, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutant before it counts as a timeout")
    ap.add_argument("--data", default=os.environ.get("REPRODUCE_DATA", str(REPO.parent / "shared" / "data")),
                    help="data root for the copies (default $REPRODUCE_DATA, else ../shared/data)")
    args = ap.parse_args(argv)
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names), "mutant names must be unique"
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:32s} {m.file:34s} {m.description}{'  [equivalent: ' + m.equivalent + ']' if m.equivalent else ''}")
        return 0
    unknown = set(args.only or ()) - set(names)
    if unknown:
        ap.error(f"unknown mutants: {sorted(unknown)}")
    todo = [m for m in MUTANTS if not args.only or m.name in args.only]
    try:
        for m in todo:
            check(m)
    except StaleMutant as e:
        print(f"STALE: {e}", file=sys.stderr)
        return 2
    files, data = source_files(), str(Path(args.data).resolve())
    t0, results = time.time(), {}
    status, secs, first = run_one(CANARY, files, data, args.timeout)
    print(f"[canary] {status} in {secs:.0f} s {first}", flush=True)
    if status != "killed":
        print("ABORT: a copy broken at import passed the suite, so the copies do not import their own code", file=sys.stderr)
        return 3

    def go(m: Mutant):
        results[m.name] = run_one(m, files, data, args.timeout)
        status, secs, first = results[m.name]
        print(f"[{len(results)}/{len(todo)}] {m.name}: {status} in {secs:.0f} s {first}", flush=True)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(go, todo))
    print(f"\n| mutant | file | result | s | first failing test |\n|---|---|---|---|---|")
    bad = []
    for m in todo:
        status, secs, first = results[m.name]
        if status != "killed":
            status += " (equivalent)" if m.equivalent else ""
            if not m.equivalent:
                bad.append(m.name)
        print(f"| {m.name} | {m.file} | {status} | {secs:.0f} | {first or m.equivalent} |")
    killed = sum(results[m.name][0] == "killed" for m in todo)
    print(f"\n{killed}/{len(todo)} killed in {time.time() - t0:.0f} s" + (f"; SURVIVED: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
