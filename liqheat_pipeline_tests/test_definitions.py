"""The code location loads, and invalid configuration fails at load time."""

import subprocess
import sys

from liqheat_pipeline.definitions import defs


def test_definitions_load_with_defaults():
    definitions = defs()
    definitions.resolve_asset_graph()
    assert "database" in definitions.resources


def test_invalid_environment_fails_at_load_time_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from liqheat_pipeline.definitions import defs; defs()"],
        env={"LIQHEAT_SYMBOLS": "BTC/USDT", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "LIQHEAT_SYMBOLS" in result.stderr
