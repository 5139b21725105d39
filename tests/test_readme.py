"""The generated blocks of README.md and docs/*.md: equal to the files and commands they come from, and the
block mechanics (refresh, title line, stale and malformed blocks)."""
import contextlib
import io
import shlex
from pathlib import Path

import pytest

from reproduce import readme, table

from conftest import REPO as ROOT


def run_table(command: str) -> str:
    """A block's `python -m reproduce.table ...`, in this process (the published results unless it names others)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        table.main(["--results", str(ROOT / "results"), *shlex.split(command)[3:]])
    return out.getvalue()


@pytest.mark.parametrize("page", readme.pages(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_equals_its_source(page):
    text = page.read_text()
    assert readme.render(text, page.parent, run_table) == text, (
        f"{page.relative_to(ROOT)} is stale: run `python -m reproduce.readme` (after `python -m reproduce.report`)")


def test_readme_includes_the_generated_tables_and_stays_short():
    text = (ROOT / "README.md").read_text()
    for name in ("figure2_table.md", "claims.md"):
        assert f"<!-- include: results/figures/{name} -->" in text, name
    assert len(text.splitlines()) <= 150


def page_with(tmp_path: Path, source_text: str, body: str = "old\n") -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "t.md").write_text(source_text)
    page = tmp_path / "docs" / "p.md"
    page.write_text(f"intro\n<!-- include: ../t.md -->\n{body}<!-- end include -->\nafter\n")
    return page


def test_refresh_replaces_a_stale_body_without_the_title_line(tmp_path):
    page = page_with(tmp_path, "# Title\n\n| a |\n|---|\n| 1 |\n")
    assert readme.refresh(tmp_path) == [page]
    assert page.read_text() == "intro\n<!-- include: ../t.md -->\n\n| a |\n|---|\n| 1 |\n\n<!-- end include -->\nafter\n"
    assert readme.refresh(tmp_path) == []  # current now: nothing rewritten


def test_refresh_only_touches_blocks_of_the_files_named(tmp_path):
    page = page_with(tmp_path, "new\n")
    assert readme.refresh(tmp_path, only=[tmp_path / "other.md"]) == [] and "old" in page.read_text()
    assert readme.refresh(tmp_path, only=[tmp_path / "t.md"]) == [page] and "new" in page.read_text()


def test_check_mode_reports_without_writing(tmp_path):
    page = page_with(tmp_path, "new\n")
    assert readme.refresh(tmp_path, write=False) == [page] and "old" in page.read_text()


def test_command_blocks_run_through_the_runner_and_only_reproduce_table(tmp_path):
    text = "<!-- include: python -m reproduce.table --sweeps s --by seed -->\nold\n<!-- end include -->\n"
    assert readme.render(text, tmp_path) == text  # no runner: kept
    assert readme.render(text, tmp_path, lambda cmd: f"ran {cmd.split()[-1]}\n").splitlines()[2] == "ran seed"
    with pytest.raises(ValueError, match="only command"):
        readme.render(text.replace("reproduce.table", "os"), tmp_path, lambda cmd: "")


def test_malformed_blocks_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="end include"):
        readme.render("<!-- include: t.md -->\nbody without an end\n", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.md"):
        readme.render("<!-- include: missing.md -->\n<!-- end include -->\n", tmp_path)


def test_python_blocks_show_a_file_or_one_definition_as_code(tmp_path):
    (tmp_path / "m.py").write_text("import os\n\n\n@dataclass\nclass A:\n    x: int = 1\n\n\nB: dict = {1: 2,\n     3: 4}\n")
    text = "<!-- include: m.py:A -->\n<!-- end include -->\n<!-- include: m.py:B -->\n<!-- end include -->\n"
    out = readme.render(text, tmp_path)
    assert "```python\n@dataclass\nclass A:\n    x: int = 1\n```" in out and "```python\nB: dict = {1: 2,\n     3: 4}\n```" in out
    assert "import os" in readme.render("<!-- include: m.py -->\n<!-- end include -->\n", tmp_path)
    with pytest.raises(ValueError, match="'C'"):
        readme.render("<!-- include: m.py:C -->\n<!-- end include -->\n", tmp_path)
