"""transformers internals are touched through ``zoo/hf_internals.py`` only, and the tested range is one fact.

An upstream rename (transformers 5.24's ``cache=``) must be one edit: these tests fail when another
module of the package imports transformers' internals or overrides a private generation hook, when
pyproject.toml, constraints.txt and ``TESTED_TRANSFORMERS`` disagree, and when the out-of-range
warning does not fire exactly once.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import transformers
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import zoo
from zoo import hf_internals

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("zoo", "tasks", "auto_loader", "trainers", "examples", "benchmarks")
INTERNALS_MODULE = ROOT / "zoo" / "hf_internals.py"
# transformers' public modules; anything deeper is an internal that moves between minor releases.
PUBLIC_MODULES = {
    "transformers",
    "transformers.activations",
    "transformers.logging",
    "transformers.modeling_outputs",
    "transformers.utils",
    "transformers.utils.logging",
}
# Top-level transformers names that are internals all the same (caches and masks move).
INTERNAL_NAMES = {"Cache", "DynamicCache", "EncoderDecoderCache", "StaticCache", "create_causal_mask"}
# Private GenerationMixin hooks: overriding one is a dependency on its name and signature.
GENERATION_HOOKS = {
    "_prepare_model_inputs",
    "_prepare_position_ids_for_generation",
    "_expand_inputs_for_generation",
    "_update_model_kwargs_for_generation",
    "_prepare_cache_for_generation",
    "_cache_dependant_input_preparation",
    "prepare_inputs_for_generation",
}


def internals_used(source: str) -> list[str]:
    """What ``source`` takes from transformers' internals directly: imports, dotted uses, hook overrides."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("transformers"):
            if node.module not in PUBLIC_MODULES:
                found.append(f"from {node.module} import ...")
            found += [f"from transformers import {a.name}" for a in node.names if a.name in INTERNAL_NAMES]
        elif isinstance(node, ast.Import):
            found += [
                f"import {a.name}"
                for a in node.names
                if a.name.startswith("transformers.") and a.name not in PUBLIC_MODULES
            ]
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.startswith("transformers."):
                module, name = dotted.rsplit(".", 1)
                if any(part[:1].isupper() for part in module.split(".")):
                    continue  # an attribute of a class (transformers.GPT2Config.from_dict)
                if module == "transformers" and name in INTERNAL_NAMES:
                    found.append(dotted)
                elif module != "transformers" and module not in PUBLIC_MODULES:
                    found.append(module)
        elif isinstance(node, ast.FunctionDef) and node.name in GENERATION_HOOKS:
            found.append(f"def {node.name}")
    return sorted(set(found))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def test_the_scanner_finds_each_kind_of_direct_use():
    source = """
from transformers.masking_utils import create_causal_mask
from transformers import DynamicCache, PreTrainedModel
import transformers.cache_utils
import transformers
x = transformers.generation.utils.GenerationMixin
class M:
    def _update_model_kwargs_for_generation(self): ...
"""
    assert {
        "from transformers.masking_utils import ...",
        "from transformers import DynamicCache",
        "import transformers.cache_utils",
        "transformers.generation.utils",
        "def _update_model_kwargs_for_generation",
    } <= set(internals_used(source))
    public = (
        "import transformers\nfrom transformers import AutoModel\n"
        "from transformers.modeling_outputs import BaseModelOutput\n"
        "v = transformers.__version__\ntransformers.utils.logging.set_verbosity_error()\n"
    )
    assert internals_used(public) == []


def test_only_hf_internals_touches_transformers_internals():
    offenders = {}
    for directory in PACKAGE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path == INTERNALS_MODULE:
                continue
            used = internals_used(path.read_text(encoding="utf-8"))
            if used:
                offenders[str(path.relative_to(ROOT))] = used
    assert not offenders, f"import these through zoo/hf_internals.py instead: {offenders}"


def _pyproject_transformers_spec() -> SpecifierSet:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"transformers([<>=!~][^"]*)"', text)
    assert match, "pyproject.toml declares no transformers range"
    return SpecifierSet(match.group(1))


def _constraint(package: str) -> Version:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    assert canonicalize_name(package) in pins, f"constraints.txt pins no {package}"
    return pins[canonicalize_name(package)]


def test_tested_range_is_one_fact():
    lowest, first_untested = hf_internals.TESTED_TRANSFORMERS
    spec = _pyproject_transformers_spec()
    assert spec == SpecifierSet(f">={lowest.rsplit('.', 1)[0]},<{first_untested.rsplit('.', 1)[0]}"), spec
    pinned = _constraint("transformers")
    assert pinned in spec and Version(lowest) <= pinned < Version(first_untested)
    assert Version(transformers.__version__) == pinned, (
        "the suite runs on a transformers other than the pinned one"
    )
    assert _constraint("torch").release[:2] == (2, 13)


@pytest.fixture
def fresh_warning_state(monkeypatch):
    monkeypatch.setattr(hf_internals, "_warned_untested", False)


def test_an_untested_transformers_warns_once_naming_the_range(fresh_warning_state):
    with pytest.warns(
        UserWarning, match=r"tested with transformers >=5\.24\.0,<5\.25\.0; transformers 5\.25\.1"
    ):
        assert hf_internals.warn_if_untested("5.25.1") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hf_internals.warn_if_untested("5.23.0") is True  # outside, but said already


def test_the_tested_transformers_does_not_warn(fresh_warning_state):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hf_internals.warn_if_untested("5.24.3") is False
        assert hf_internals.warn_if_untested() is False
    assert zoo.TESTED_TRANSFORMERS == hf_internals.TESTED_TRANSFORMERS


def test_import_zoo_under_another_transformers_warns_once():
    code = (
        # peft first: importing it replaces the transformers module object the version is patched on
        "import warnings, peft, transformers; transformers.__version__ = '5.31.0'\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import zoo, importlib; importlib.reload(zoo)\n"
        "print([str(w.message) for w in caught if issubclass(w.category, UserWarning) and 'tested with' in str(w.message)])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    messages = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert len(messages) == 1, messages
    assert "transformers >=5.24.0,<5.25.0" in messages[0] and "5.31.0 is installed" in messages[0]


def test_every_pinned_dependency_is_inside_its_declared_range():
    """constraints.txt is the set CI passed with; pyproject.toml must admit exactly that set."""
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    outside = []
    for line in declared:
        requirement = Requirement(line)
        pinned = _constraint(requirement.name)
        if requirement.specifier and pinned not in requirement.specifier:
            outside.append(f"{requirement} (pinned {pinned})")
    assert not outside, outside
