"""The bioconda-style recipes in recipes/ say what pyproject.toml and the wrappers say: the
package name and version the wrappers require, its run requirements and console scripts, and
a test command per script."""

import importlib.metadata
import re
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from deepgmap_core import __version__

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# PyPI name -> conda-forge/bioconda name where they differ.
CONDA_NAMES = {"matplotlib": "matplotlib-base", "pyBigWig": "pybigwig", "igraph": "python-igraph"}


def rendered(path):
    """The recipe as conda-build would see it after Jinja: its {% set %} values substituted,
    {{ PYTHON }} and pin_subpackage(...) left as text."""
    text = path.read_text()
    values = dict(re.findall(r'{%\s*set\s+(\w+)\s*=\s*"([^"]*)"\s*%}', text))
    text = re.sub(r"{%.*?%}", "", text)
    text = re.sub(r"{{\s*(\w+)\s*}}", lambda m: values.get(m.group(1), m.group(1)), text)
    text = re.sub(r"{{\s*(pin_subpackage\([^}]*\))\s*}}", r"'\1'", text)
    return yaml.safe_load(text)


def requirement_lines(requirements):
    return {line.split()[0]: " ".join(line.split()[1:]) for line in requirements}


def test_the_package_recipe_matches_pyproject_and_the_wrappers():
    recipe = rendered(ROOT / "recipes" / "deepgmap-suite" / "meta.yaml")
    assert recipe["package"] == {"name": PROJECT["name"], "version": __version__}
    macros = ElementTree.parse(ROOT / "tools" / "macros.xml").getroot()
    tokens = {token.get("name"): token.text for token in macros.iter("token")}
    requirement = macros.find("xml[@name='requirements']/requirements/requirement")
    assert (requirement.text, tokens["@TOOL_VERSION@"]) == (recipe["package"]["name"], recipe["package"]["version"])
    assert recipe["build"]["noarch"] == "python"
    assert recipe["build"]["run_exports"] == ['pin_subpackage(name, max_pin="x.x")']
    run = requirement_lines(recipe["requirements"]["run"])
    wanted = {CONDA_NAMES.get(Requirement(text).name, Requirement(text).name): str(Requirement(text).specifier)
              for text in PROJECT["dependencies"]}
    wanted["python"] = PROJECT["requires-python"]
    wanted["tensorflow"] = str(Requirement(PROJECT["optional-dependencies"]["tensorflow"][0]).specifier)
    assert run == wanted
    scripts = {line.split(" = ")[0]: line.split(" = ")[1] for line in recipe["build"]["entry_points"]}
    assert scripts == PROJECT["scripts"]
    assert sorted(recipe["test"]["commands"]) == sorted(f"{script} --version" for script in PROJECT["scripts"])


# The packages the wrappers require that no conda channel has, each with a recipe here.
OWN_RECIPES = ["memelite", "modisco-lite"]


@pytest.mark.parametrize("name", OWN_RECIPES)
def test_a_dependency_recipe_is_the_version_the_wrappers_require(name):
    recipe = rendered(ROOT / "recipes" / name / "meta.yaml")
    required = {requirement.get("version") for wrapper in (ROOT / "tools").glob("*.xml")
                for requirement in ElementTree.parse(wrapper).getroot().iter("requirement")
                if requirement.text == name}
    assert required == {recipe["package"]["version"]}
    assert recipe["build"]["noarch"] == "python"
    assert recipe["build"]["run_exports"] == ['pin_subpackage(name, max_pin="x.x")']


@pytest.mark.parametrize("name", OWN_RECIPES)
def test_a_dependency_recipe_says_what_the_installed_package_says(name):
    """Its run requirements (extras left out, conda's names) and commands are those of the
    package's own metadata (the venv holds the wrappers' version of it: Makefile)."""
    recipe = rendered(ROOT / "recipes" / name / "meta.yaml")
    installed = importlib.metadata.distribution(name)
    assert installed.version == recipe["package"]["version"]
    run = [Requirement(text) for text in installed.requires or []]
    wanted = {CONDA_NAMES.get(r.name, r.name): str(r.specifier) for r in run if not r.marker}
    wanted["python"] = installed.metadata["Requires-Python"]
    assert requirement_lines(recipe["requirements"]["run"]) == wanted
    scripts = {entry.name: entry.value for entry in installed.entry_points if entry.group == "console_scripts"}
    assert dict(line.split(" = ") for line in recipe["build"]["entry_points"]) == scripts
    assert {f"{script} --help" for script in scripts} <= set(recipe["test"]["commands"])
