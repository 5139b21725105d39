"""`python -m reproduce.readme [--check]`: the tables of README.md and docs/*.md, refreshed from the files and
commands that generate them, so that no number in them is pasted by hand.

A page marks each generated part as a block

    <!-- include: ../results/figures/claims.md -->

    ...the file's text, less its title line...

    <!-- end include -->

whose source is a markdown file (relative to the page), a Python file or one top-level definition in it
(`../baselines/iwae.py:IWAE`, shown as a code block), or a `python -m reproduce.table ...` command (run from the
repository root). `python -m reproduce.report` refreshes the blocks of the files it wrote; this command
refreshes every block, or with --check lists the pages whose blocks are stale."""
from __future__ import annotations

import argparse
import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?P<open><!-- include: (?P<source>.+?) -->\n)(?P<body>.*?)(?P<end><!-- end include -->)", re.DOTALL)
COMMAND = "python -m reproduce.table"  # the one command a block may run
Runner = Callable[[str], str]  # a block's command -> its output


def pages(root: Path = ROOT) -> list[Path]:
    """The pages that may hold blocks: README.md and docs/*.md."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def run_command(command: str, root: Path = ROOT) -> str:
    """A block's `python -m reproduce.table ...` run from the repository root; its standard output."""
    argv = shlex.split(command)
    done = subprocess.run([sys.executable, *argv[1:]], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{command}` failed (exit {done.returncode}):\n{done.stderr}")
    return done.stdout


def untitled(text: str) -> str:
    """A generated file's text for a block: without its leading '# title' line (the page has its own
    heading) and surrounding blank lines, ending in one newline."""
    lines = text.strip("\n").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip("\n") + "\n"


def definition(code: str, name: str) -> str:
    """The source lines of the top-level class, function or assignment `name` in `code`, decorators included."""
    for node in ast.parse(code).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", node)]
        names = [getattr(t, "id", getattr(t, "name", None)) for t in targets]
        if name in names:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            return "\n".join(code.splitlines()[start - 1 : node.end_lineno]) + "\n"
    raise ValueError(f"no top-level definition of {name!r}")


def file_text(path: Path, name: str | None) -> str:
    """A file source's text for its block: markdown less its title line; Python (all of it, or the definition
    `name`) as a fenced code block."""
    text = path.read_text()
    if path.suffix != ".py":
        return untitled(text)
    return "```python\n" + (definition(text, name) if name else text) + "```\n"


def render(text: str, base: Path, run: Runner | None = None, only: Iterable[Path] | None = None) -> str:
    """`text` with each block's body replaced by its source's current text. File sources are read relative to
    `base` (only those in `only`, when given); command sources run through `run` (kept as they are without)."""
    if text.count("<!-- include: ") != len(BLOCK.findall(text)):
        raise ValueError("an `<!-- include: SOURCE -->` line has no `<!-- end include -->` after it")
    only = None if only is None else {Path(p).resolve() for p in only}

    def body(m: re.Match) -> str:
        source = m["source"].strip()
        if source.startswith("python "):
            if not source.startswith(COMMAND + " "):
                raise ValueError(f"include block `{source}`: the only command a block may run is `{COMMAND} ...`")
            if run is None:
                return m[0]
            new = untitled(run(source))
        else:
            file, _, name = source.partition(".py:")
            path = (base / (file + ".py" if name else file)).resolve()
            if only is not None and path not in only:
                return m[0]
            if not path.exists():
                raise FileNotFoundError(f"include block: {path} does not exist (run `python -m reproduce.report` first?)")
            new = file_text(path, name or None)
        return f"{m['open']}\n{new}\n{m['end']}"  # blank lines around it: the body is its own markdown block

    return BLOCK.sub(body, text)


def refresh(root: Path = ROOT, run: Runner | None = None, only: Iterable[Path] | None = None,
            write: bool = True) -> list[Path]:
    """Re-render every page under root; returns the pages whose blocks changed (rewritten when write)."""
    changed = []
    for page in pages(root):
        text = page.read_text()
        new = render(text, page.parent, run, only)
        if new != text:
            changed.append(page)
            if write:
                page.write_text(new)
                print(f"[readme] refreshed {page.relative_to(root)}")
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reproduce.readme", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 listing the pages that are stale")
    args = p.parse_args(argv)
    stale = refresh(run=run_command, write=not args.check)
    if args.check and stale:
        print("stale: " + ", ".join(str(s.relative_to(ROOT)) for s in stale) + " (run python -m reproduce.readme)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
