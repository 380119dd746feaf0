"""The Galaxy wrappers as a Tool Shed suite: one version token that matches the package, and
help with an example and citations in every wrapper (planemo lint checks the rest)."""

import importlib
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from deepgmap_core import __version__

TOOLS = Path(__file__).resolve().parents[1] / "tools"
WRAPPERS = sorted(path for path in TOOLS.glob("*.xml") if path.name != "macros.xml")
PROJECT = tomllib.loads((TOOLS.parent / "pyproject.toml").read_text())["project"]


def test_the_version_token_is_the_package_version():
    macros = ElementTree.parse(TOOLS / "macros.xml").getroot()
    tokens = {token.get("name"): token.text for token in macros.iter("token")}
    assert tokens["@TOOL_VERSION@"] == __version__
    requirement = macros.find("xml[@name='requirements']/requirements/requirement")
    assert requirement.text == PROJECT["name"] and requirement.get("version") == "@TOOL_VERSION@"


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda path: path.stem)
def test_wrapper_takes_its_version_from_the_token_and_has_an_example_and_citations(wrapper):
    tool = ElementTree.parse(wrapper).getroot()
    assert tool.get("version") == "@TOOL_VERSION@+galaxy@VERSION_SUFFIX@"
    assert tool.find("expand[@macro='requirements']") is not None
    help_text = tool.find("help").text
    assert "**What it does**" in help_text and "**Example**" in help_text
    assert tool.find("expand[@macro='citations']") is not None


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda path: path.stem)
def test_each_wrapper_runs_and_versions_its_own_executable(wrapper):
    """The @BINARY@ token (the version command of macros.xml uses it) is the console script of
    pyproject.toml whose module has the wrapper's name; Keras tools require TensorFlow."""
    tool = ElementTree.parse(wrapper).getroot()
    tokens = {token.get("name"): token.text for token in tool.iter("token")}
    assert PROJECT["scripts"][tokens["@BINARY@"]] == f"deepgmap_core.cli.{wrapper.stem}:main"
    assert "@BINARY@" in tool.find("command").text
    requirements = [r.text for r in tool.iter("requirement")]
    if wrapper.stem in ("train_model", "predict_bigwig", "score_variants", "motif_extract", "attribute"):
        assert "tensorflow" in requirements


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda path: path.stem)
def test_a_command_that_takes_threads_gets_the_jobs_slots(wrapper):
    """Galaxy gives a job GALAXY_SLOTS cores: every command with -p/--threads is passed them."""
    tool = ElementTree.parse(wrapper).getroot()
    parser = importlib.import_module(f"deepgmap_core.cli.{wrapper.stem}").build_parser()
    takes_threads = any("--threads" in action.option_strings for action in parser._actions)
    assert ("--threads \\${GALAXY_SLOTS:-4}" in tool.find("command").text) == takes_threads


def _expanded_params(tool, macros):
    """The wrapper's <param argument=...> elements (in every branch of its conditionals), those of
    the macros it expands included."""
    params = list(tool.find("inputs").iter("param"))
    for expand in tool.iter("expand"):
        block = macros.find(f"xml[@name='{expand.get('macro')}']")
        if block is not None:
            params += list(block.iter("param"))
    return [param for param in params if param.get("argument")]


def _form_default(param):
    """What the Galaxy form sends when left as it is, as the command's argument would parse it."""
    kind = param.get("type")
    if kind == "select":
        options = param.findall("option")
        chosen = [o for o in options if o.get("selected") == "true"] or options[:1]
        return chosen[0].get("value") if chosen else None
    if kind == "boolean":
        return param.get("checked") == "true"
    return param.get("value")


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda path: path.stem)
def test_each_form_default_is_the_commands_default(wrapper):
    """Defaults are declared in the settings dataclasses (argparse reads them); a Galaxy form
    repeats them in value= attributes, which must say the same."""
    tool = ElementTree.parse(wrapper).getroot()
    macros = ElementTree.parse(TOOLS / "macros.xml").getroot()
    parser = importlib.import_module(f"deepgmap_core.cli.{wrapper.stem}").build_parser()
    actions = {option: action for action in parser._actions for option in action.option_strings}
    compared = 0
    for param in _expanded_params(tool, macros):
        action = actions.get(param.get("argument"))
        form = _form_default(param)
        numeric = param.get("type") in ("integer", "float")
        if (action is None or form in (None, "") or action.default is None or param.get("type") == "boolean"
                or (numeric and isinstance(action.default, str))):
            continue  # the option left out (the command's default applies), or a number for a mode's default
        expected = action.default
        value = type(expected)(form) if isinstance(expected, (int, float)) and not isinstance(expected, bool) else form
        assert value == expected, f"{wrapper.name} {param.get('argument')}: form {form!r}, command {expected!r}"
        compared += 1
    if wrapper.stem != "merge_bigwigs":
        assert compared, f"{wrapper.name}: no form default compared"


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda path: path.stem)
def test_each_form_number_stays_within_the_commands_range(wrapper):
    """A number the Galaxy form lets through is one the command takes: each numeric param of an
    option with a checked range (cli/common.py number_type) has min and max inside that range.
    Galaxy's bounds are inclusive: an open end (e.g. q-value > 0) may be the form's min, whose one
    value the command refuses in one line."""
    tool = ElementTree.parse(wrapper).getroot()
    macros = ElementTree.parse(TOOLS / "macros.xml").getroot()
    parser = importlib.import_module(f"deepgmap_core.cli.{wrapper.stem}").build_parser()
    actions = {option: action for action in parser._actions for option in action.option_strings}
    for param in _expanded_params(tool, macros):
        bounds = getattr(actions[param.get("argument")].type, "bounds", None) if param.get("argument") in actions \
            else None
        if bounds is None or param.get("type") not in ("integer", "float"):
            continue
        where = f"{wrapper.name} {param.get('argument')}"
        low, high = param.get("min"), param.get("max")
        assert low is not None and float(low) >= bounds.low, f"{where}: min {low}, the command's {bounds.low}"
        if bounds.high is not None:
            assert high is not None and float(high) <= bounds.high, f"{where}: max {high}, the command's {bounds.high}"
