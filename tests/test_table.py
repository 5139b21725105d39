"""python -m reproduce.table on planted runs: the rows it keeps, the values at each point, the paper's row."""
import pytest

from reproduce import table
from tests.test_report import curve, write_run


def test_table_rows_values_and_the_papers_row(tmp_path, capsys):
    root = tmp_path / "results"
    # write_run puts extra settings in the algorithm section: the rows are keyed by algorithm.lr here
    write_run(root, "lr", "frey", "aevb", 10, 0, curve({100_000: (700, 701), 1_000_000: (990, 985)}), lr=0.01)
    write_run(root, "lr", "frey", "aevb", 10, 1, curve({100_000: (650, 651), 1_050_000: (950, 949)}), lr=0.02)
    write_run(root, "lr", "frey", "aevb", 5, 0, curve({100_000: (1, 2)}), lr=0.5)  # other n_z: left out
    table.main(["--results", str(root), "--sweeps", "lr", "--where", "dataset.name=frey", "algorithm.name=aevb",
                "model.n_z=10", "--by", "algorithm.lr", "--points", "1e5,1e6,1e7"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| algorithm.lr | sweep | 1e+05 | 1e+06 | 1e+07 |"
    assert lines[2] == "| 0.01 | lr | 700.0 / 701.0 | 990.0 / 985.0 |  |"
    assert lines[3] == "| 0.02 | lr | 650.0 / 651.0 | 950.0 / 949.0 |  |"  # 1.05e6 is within x1.1 of 1e6
    assert lines[4] == "| paper |  |  | 758 / 792 | 1217 / 1171 |"  # reference.csv, Frey n_z = 10
    assert len(lines) == 5


def test_table_without_matching_runs_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no runs"):
        table.main(["--results", str(tmp_path), "--sweeps", "none", "--by", "seed"])


def test_settings_newer_than_a_run_show_the_value_it_ran_with(tmp_path, capsys):
    root = tmp_path / "results"
    write_run(root, "old", "frey", "aevb", 10, 0, curve({100_000: (700, 701)}))  # stored without model.log_var
    table.main(["--results", str(root), "--sweeps", "old", "--by", "model.log_var", "--points", "1e5"])
    assert capsys.readouterr().out.splitlines()[2] == "| output | old | 700.0 / 701.0 |"
