"""The mutation list (tests/mutants.py) stays honest: every mutant's original snippet still occurs exactly once,
so a refactor that moves or changes the mutated code shows here, in the default suite, without running it."""
import pytest

import mutants


@pytest.mark.parametrize("mutant", [mutants.CANARY, *mutants.MUTANTS], ids=lambda m: m.name)
def test_mutant_snippet_occurs_exactly_once(mutant):
    mutants.check(mutant)  # raises StaleMutant naming the mutant and the file


def test_mutants_are_many_unique_and_cover_every_package():
    names = [m.name for m in mutants.MUTANTS]
    assert len(names) >= 30 and len(set(names)) == len(names)
    files = {m.file for m in mutants.MUTANTS}
    for part in ("reproduce/models.py", "reproduce/objectives.py", "reproduce/algorithms.py", "baselines/wake_sleep.py",
                 "baselines/mcem.py", "reproduce/marginal_likelihood.py", "reproduce/hmc.py", "reproduce/data.py"):
        assert part in files, part
    assert all(m.original != m.replacement for m in mutants.MUTANTS)
