"""Every config group option and sweep composes and validates; bad input fails naming the field."""
import os
import subprocess
import sys
import re

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from conftest import REPO
from reproduce import callbacks, models, train
from reproduce.config import Config, ConfigError
from reproduce.cli import integer_keys, integral, register

CONF = REPO / "conf"
register()


def make(overrides=(), hydra=False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def options(group):
    """A group's options: YAML files under conf/ and the schema nodes registered by reproduce.cli."""
    from hydra.core.config_store import ConfigStore

    stored = ConfigStore.instance().repo.get(group, {})
    return sorted({p.stem for p in (CONF / group).glob("*.yaml")} | {n.removesuffix(".yaml") for n in stored})


@pytest.mark.parametrize("group", ["dataset", "algorithm", "budget", "model", "panel", "launcher"])
def test_every_group_option_composes_and_validates(group):
    for option in options(group):
        cfg = make([f"{'+' if group == 'panel' else ''}{group}={option}"])
        assert isinstance(OmegaConf.to_object(cfg), Config)


def test_dataset_specific_sizes_come_from_config():
    mnist = OmegaConf.to_object(make(["dataset=mnist"]))
    frey = OmegaConf.to_object(make(["dataset=frey"]))
    assert (mnist.model.n_hidden, mnist.model.decoder.value) == (500, "bernoulli")
    assert (frey.model.n_hidden, frey.model.decoder.value) == (200, "gaussian")
    assert OmegaConf.to_object(make(["dataset=frey", "model.n_hidden=100"])).model.n_hidden == 100


def sweep_jobs(name):
    """The override lists a sweep's basic-sweeper grid expands to (the expansion the sweep itself validates)."""
    return callbacks.sweep_jobs(make([f"+sweep={name}"], hydra=True))


@pytest.mark.parametrize("name", [p.stem for p in (CONF / "sweep").glob("*.yaml")])
def test_every_sweep_job_composes_and_validates(name):
    jobs = sweep_jobs(name)
    assert jobs
    for overrides in jobs:
        cfg = OmegaConf.to_object(make(overrides))
        assert cfg.log.sweep == name


def test_fig2_grid_is_the_papers():
    cells = {(c.dataset.name.value, c.model.n_z) for c in (OmegaConf.to_object(make(o)) for o in sweep_jobs("fig2"))}
    assert cells == {("mnist", z) for z in (3, 5, 10, 20, 200)} | {("frey", z) for z in (2, 5, 10, 20)}


@pytest.mark.parametrize("override, field", [
    ("model.n_z=abc", "n_z"),
    ("model.nz=3", "nz"),
    ("dataset.name=cifar", "name"),
    ("train.lr=fast", "lr"),
    ("dataset.binarize=sometimes", "binarize"),
    ("log.wandb=sometimes", "wandb"),
])
def test_bad_override_fails_at_compose_naming_the_field(override, field):
    with pytest.raises((ConfigCompositionException, ValidationError)) as e:
        make([override])
    assert field in str(e.value) + str(e.value.__cause__)


@pytest.mark.parametrize("override, field", [
    ("model.n_z=0", "model.n_z"),
    ("train.budget=-5", "train.budget"),
    ("train.lr=0", "train.lr"),
    ("train.batch_size=0", "train.batch_size"),
])
def test_bad_value_fails_before_training_naming_the_field(override, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        OmegaConf.to_object(make([override]))


def test_closed_sets_are_enums():
    with pytest.raises((ConfigCompositionException, ValidationError), match="q_update"):
        make(["algorithm=rws", "algorithm.q_update=never"])
    assert OmegaConf.to_object(make(["algorithm=rws", "algorithm.q_update=both"])).algorithm.q_update.value == "both"


def test_unknown_algorithm_fails_naming_the_group():
    with pytest.raises(ConfigCompositionException, match="algorithm"):
        make(["algorithm=nope"])


def test_fig3_grid_is_the_papers():
    cfgs = [OmegaConf.to_object(make(o)) for o in sweep_jobs("fig3")]
    assert {(c.dataset.n_train, c.algorithm.name) for c in cfgs} == {
        (n, a) for n in (1000, 50000) for a in ("aevb", "wake_sleep", "mcem")}
    assert all((c.model.n_z, c.model.n_hidden, c.eval.hmc, c.dataset.name.value) == (3, 100, True, "mnist") for c in cfgs)


def test_help_names_the_suite_its_groups_and_examples():
    """`python -m reproduce --help` is the suite's page (conf/hydra/help/reproduce.yaml), not Hydra's generic one."""
    repo = CONF.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    p = subprocess.run([sys.executable, "-m", "reproduce", "--help"], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Auto-Encoding Variational Bayes" in out and "powered by Hydra" not in out
    for group in ("algorithm", "dataset", "budget", "sweep", "panel", "launcher"):  # listed with their options
        assert f"\n{group}: " in out and f"\n  {group} " in out, group
    assert "algorithm: aevb, full_vb, iwae, mcem, rws, wake_sleep" in out
    assert "python -m reproduce +sweep=fig2 budget=paper" in out and "model.n_z=3" in out
    assert "base_config" not in out


@pytest.mark.parametrize("override, message", [
    ("train.checkpoint_every=0", "train.checkpoint_every=0 is invalid: must be > 0"),
    ("train.checkpoint_every=-5", "train.checkpoint_every=-5 is invalid: must be > 0"),
    ("train.log_every=0", "train.log_every=0 is invalid: must be > 0"),
    ("train.threads=0", "train.threads=0 is invalid: must be > 0, or null"),
    ("eval.per_decade=0", "eval.per_decade=0 is invalid: must be > 0"),
    ("eval.every=0", "eval.every=0 is invalid: must be > 0, or null"),
    ("eval.train_subset=0", "eval.train_subset=0 is invalid: must be > 0, or null (the whole training set)"),
    ("eval.train_subset=-3", "eval.train_subset=-3 is invalid: must be > 0, or null"),
    ("eval.is_subset=0", "eval.is_subset=0 is invalid: must be > 0, or null (every point of each split)"),
    ("eval.is_subset=-5", "eval.is_subset=-5 is invalid: must be > 0, or null"),
    ("eval.hmc_subset=0", "eval.hmc_subset=0 is invalid: must be > 0"),
    ("eval.hmc_leapfrog=0", "eval.hmc_leapfrog=0 is invalid: must be > 0"),
])
def test_intervals_and_counts_must_be_positive_naming_the_field_and_range(override, message):
    with pytest.raises(ConfigError, match=re.escape(f"config value {message}")):
        OmegaConf.to_object(make([override]))


def test_null_subsets_mean_all_points():
    cfg = OmegaConf.to_object(make(["eval.is_subset=null", "eval.train_subset=null", "eval.every=null"]))
    assert (cfg.eval.is_subset, cfg.eval.train_subset, cfg.eval.every) == (None, None, None)


def test_integers_written_as_the_readme_writes_budgets():
    keys = integer_keys()
    assert {"seed", "train.budget", "eval.is_subset", "algorithm.K", "algorithm.n_leapfrog", "model.n_z"} <= keys
    assert not {"train.lr", "model.init_std", "train.compile"} & keys
    assert integral("train.budget=1e6", keys) == "train.budget=1000000"
    assert integral("+seed=2.0", keys) == "+seed=2"
    assert integral("train.budget=1e5,2.5e5,1000000", keys) == "train.budget=100000,250000,1000000"  # a sweep's list
    for untouched in ("train.lr=1e-3", "hydra.launcher.n_jobs=2", "eval.start=range(1000,3000,1000)", "-m", "model.n_z=abc"):
        assert integral(untouched, keys) == untouched
    with pytest.raises(ConfigError, match=re.escape("config value train.budget=1.5 is invalid: must be a whole number")):
        integral("train.budget=1.5", keys)
    assert OmegaConf.to_object(make([integral("train.budget=2e5", keys)])).train.budget == 200_000


@pytest.mark.parametrize("n_jobs, ok", [(None, True), (1, True), (4, True), (-1, True), (0, False), (-1000, False), ("two", False)])
def test_launcher_n_jobs_is_checked(n_jobs, ok):
    if ok:
        callbacks.check_n_jobs(n_jobs)
    else:
        with pytest.raises(ConfigError, match=rf"hydra.launcher.n_jobs={n_jobs!r} is invalid: must be > 0 \(jobs at once\) or from -1"):
            callbacks.check_n_jobs(n_jobs)


def test_a_model_too_large_for_this_machine_is_refused_with_the_estimate(monkeypatch):
    cfg = OmegaConf.to_object(make(["model.n_z=100000"]))
    need = models.training_bytes(cfg.model, 784, 100)
    assert 2.3 * 2**30 < need < 2.5 * 2**30  # 150M parameters, 4 copies of 4 bytes, and the activations
    monkeypatch.setattr(train, "machine_memory", lambda device: 2 * 2**30)
    with pytest.raises(ConfigError, match=r"model.n_z=100000 is invalid with model.n_hidden=500: one training step needs "
                                          r"about 2.4 GiB .* more than the 2.0 GiB of memory of cpu here"):
        train.preflight(cfg)
    train.preflight(OmegaConf.to_object(make(["model.n_z=200"])))  # the paper's largest fits
    monkeypatch.undo()
    assert train.machine_memory("cpu") > 2**28 and train.machine_memory("cuda:99") is None


def test_parameters_counted_without_allocating_equal_the_built_models():
    for overrides in ([], ["dataset=frey"], ["dataset=frey", "model.log_var=bias"]):
        cfg = OmegaConf.to_object(make(overrides))
        n_x = 784 if cfg.dataset.name.value == "mnist" else 560
        nets = models.build(cfg.model, n_x)
        params = sum(p.numel() for net in nets for p in net.parameters())
        assert models.training_bytes(cfg.model, n_x, 0) == 4 * 4 * params


def test_many_evaluations_and_a_start_past_the_budget_are_named(capsys):
    train.preflight(OmegaConf.to_object(make(["eval.per_decade=1000"])))
    assert "[reproduce] note: 1001 evaluations (eval.start=100000 to train.budget=1000000, eval.per_decade=1000)" in capsys.readouterr().err
    train.preflight(OmegaConf.to_object(make(["train.budget=20000"])))
    assert "eval.start=100000 is past train.budget=20000: one evaluation, at the end" in capsys.readouterr().err
    train.preflight(OmegaConf.to_object(make()))
    assert capsys.readouterr().err == ""


def test_two_commands_started_in_one_second_never_share_an_output_folder():
    cfg = make(hydra=True)
    for key in ("hydra.sweep.dir", "hydra.run.dir"):
        assert OmegaConf.select(cfg, key).endswith(f"-{os.getpid()}"), key
