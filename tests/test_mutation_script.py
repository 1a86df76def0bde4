"""benchmarks/mutation.py: the parts that turn mutmut's output into a score."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation", REPO / "benchmarks" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation"] = module
    spec.loader.exec_module(module)
    return module


def test_wilson_interval_matches_hand_values() -> None:
    wilson = _script().wilson
    # 90 of 100: centre (0.9 + 1.96²/200) / (1 + 1.96²/100) = 0.8852, half-width
    # 1.96 · sqrt(0.09/100 + 1.96²/40000) / (1 + 1.96²/100) = 0.0596
    low, high = wilson(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-4) and high == pytest.approx(0.9448, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mutant_names_are_the_keys_of_every_meta_file(tmp_path: Path) -> None:
    folder = tmp_path / "mutants" / "src" / "vaelab" / "study"
    folder.mkdir(parents=True)
    (folder / "elbow.py.meta").write_text(json.dumps({"exit_code_by_key": {
        "vaelab.study.elbow.x_elbows__mutmut_1": None,
        "vaelab.study.elbow.x_elbows__mutmut_2": 1}}))
    (folder / "noise.py.meta").write_text(json.dumps({"exit_code_by_key": {
        "vaelab.study.noise.x_compare__mutmut_1": 0}}))
    (folder / "noise.py").write_text("def x_compare__mutmut_9(): pass\n")  # not a source of names
    assert _script()._mutant_names(tmp_path) == [
        "vaelab.study.elbow.x_elbows__mutmut_1", "vaelab.study.elbow.x_elbows__mutmut_2",
        "vaelab.study.noise.x_compare__mutmut_1"]
