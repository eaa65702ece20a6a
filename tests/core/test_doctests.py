"""The core's docstring examples run as tests (``--doctest-modules`` for analogy_core only:
the repository root is a package whose __init__ imports the nodes, which need ComfyUI, and
pytest would also collect every conftest.py as a doctest module)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import analogy_core

MODULES = sorted(f"analogy_core.{m.name}" for m in pkgutil.iter_modules(analogy_core.__path__))


def test_every_core_module_is_listed():
    assert {"analogy_core.config", "analogy_core.pipeline", "analogy_core.progress", "analogy_core.io"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
