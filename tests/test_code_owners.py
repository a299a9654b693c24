"""One owner for each value and each piece of logic (issue 28): every default is written once, in a signature, and
what a docstring says of it agrees; no module reaches into another object's private methods."""

import ast
import inspect
import pathlib
import re

import pytest
from sklearn.base import BaseEstimator

import sklearn_costs
import sklearn_costs.preprocessing
from sklearn_costs.base import default_text

PACKAGE = pathlib.Path(sklearn_costs.__file__).parent
ESTIMATORS = sorted({obj for module in (sklearn_costs, sklearn_costs.preprocessing) for obj in vars(module).values()
                     if isinstance(obj, type) and issubclass(obj, BaseEstimator)}, key=lambda cls: cls.__name__)
#: ``name : type, default=value`` in a numpydoc Parameters section
DOCUMENTED_DEFAULT = re.compile(r"^    (\w+) : [^\n]*?default=(.+?)\s*$", re.M)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_parameter_documents_the_default_of_its_signature(cls):
    documented = dict(DOCUMENTED_DEFAULT.findall(cls.__doc__))
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name != "self":
            assert documented.get(name) == default_text(parameter.default), f"{cls.__name__}({name}=...)"


def _private_calls_on_others(path):
    """``x._name(...)`` calls in ``path`` whose ``x`` is not ``self``, ``cls`` or ``super()``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_no_module_calls_the_private_methods_of_other_objects():
    found = [call for path in sorted(PACKAGE.rglob("*.py")) for call in _private_calls_on_others(path)]
    assert not found, "private calls on other objects:\n" + "\n".join(found)
