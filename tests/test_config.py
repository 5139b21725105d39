"""Every config group option and sweep composes and validates; bad input fails naming the field."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from reproduce import callbacks
from reproduce.config import Config
from reproduce.cli import register

CONF = Path(__file__).resolve().parent.parent / "conf"
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
    assert "algorithm: aevb, full_vb, mcem, rws, wake_sleep" in out
    assert "python -m reproduce +sweep=fig2 budget=paper" in out and "model.n_z=3" in out
    assert "base_config" not in out
