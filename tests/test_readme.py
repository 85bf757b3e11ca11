"""Every ```python block of README.md runs as written: each in a fresh interpreter, in an empty temporary
folder, with this checkout first on PYTHONPATH. A failure names the block's line in README.md and ends with
its stderr, so the README cannot drift from the package again."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
TIMEOUT = 120.0  # seconds per block; each takes a few seconds, most of them `import torch`


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of every ```python block of ``text``."""
    blocks, start, code = [], None, []
    for n, line in enumerate(text.splitlines(), 1):
        if start is None:
            if re.fullmatch(r"```python\s*", line):
                start, code = n, []
        elif line.strip() == "```":
            blocks.append((start, "\n".join(code) + "\n"))
            start = None
        else:
            code.append(line)
    assert start is None, f"README.md:{start}: a ```python block is not closed"
    return blocks


BLOCKS = python_blocks(open(README, encoding="utf-8").read())


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3, "README.md should teach the three jobs in ```python blocks"


@pytest.mark.parametrize("line,code", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs(line, code, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["TMPDIR"] = str(tmp_path)  # tempfile.mkdtemp() in a block lands in the test's folder
    try:
        p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"README.md:{line}: the block did not finish within {TIMEOUT:.0f} s")
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-15:])
        pytest.fail(f"README.md:{line}: the block exits {p.returncode}\n--- stderr (tail)\n{tail}", pytrace=False)
