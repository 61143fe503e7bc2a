"""Every Python block of the README and the guide (docs/guide.md) runs as
written, on its own, in a fresh interpreter (a newcomer copies one into a file
and runs it)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "guide.md"]
BLOCKS = [block for doc in DOCUMENTS
          for block in re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)]


def needs(block):
    """Optional packages a block imports (the test skips when they are missing)."""
    return sorted({m for m in ("sklearn", "matplotlib", "scipy", "torch") if re.search(rf"\b(from|import) {m}\b", block)})


def test_the_readme_and_the_guide_have_python_blocks():
    assert len(BLOCKS) >= 10
    assert "```python" in DOCUMENTS[0].read_text(encoding="utf-8")


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_on_its_own(index, tmp_path):
    block = BLOCKS[index]
    for module in needs(block):
        pytest.importorskip(module)
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(block, encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert proc.returncode == 0, f"block {index} failed:\n{block}\n{proc.stderr[-3000:]}"
