"""The Tool Shed repositories of .shed.yml: each holds the files its wrapper's tests use, the
cached-genome table samples when the wrapper offers cached genomes, and test data within the
1 MiB per repository that the Tool Shed review asks for (tools-iuc rejects any file over it)."""

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHED = yaml.safe_load((ROOT / ".shed.yml").read_text())
MIB = 1 << 20


def repository_files(repository):
    """The paths (relative to the repository root) that a .shed.yml repository includes."""
    return [source for include in repository["include"] for source in include["source"]]


def files_its_tests_use(wrapper):
    """The test-data files a wrapper's <tests> name (value= of params and elements, file= of
    outputs), in the macros they expand too."""
    tests = ElementTree.parse(wrapper).getroot().find("tests")
    macros = ElementTree.parse(ROOT / "tools" / "macros.xml").getroot()
    elements = list(tests.iter())
    for expand in tests.iter("expand"):
        elements += list(macros.find(f"xml[@name='{expand.get('macro')}']").iter())
    names = {element.get(attribute) for element in elements for attribute in ("value", "file")
             if element.tag in ("param", "element", "output") and element.get(attribute)}
    if any(element.tag == "param" and element.get("name") == "source" and element.get("value") == "cached"
           for element in elements):
        names |= {"fasta_indexes.loc", *cached_genome_files()}
    return {name for name in names if (ROOT / "test-data" / name).is_file()}


def cached_genome_files():
    """The files of the tests' cached genomes: each FASTA of test-data/fasta_indexes.loc and its indexes."""
    loc = (ROOT / "test-data" / "fasta_indexes.loc").read_text().splitlines()
    fastas = [Path(line.split("\t")[3]).name for line in loc if line and not line.startswith("#")]
    return [fasta + suffix for fasta in fastas for suffix in ("", ".fai", ".gzi")]


@pytest.mark.parametrize("name", [name for name in SHED["repositories"]])
def test_each_repository_holds_its_wrapper_its_test_files_and_at_most_1_mib_of_test_data(name):
    files = repository_files(SHED["repositories"][name])
    wrapper = ROOT / "tools" / f"{name.removeprefix('deepgmap_')}.xml"
    assert {f"tools/{wrapper.name}", "tools/macros.xml", "tools/readme.rst"} <= set(files)
    for path in files:
        assert (ROOT / path).is_file(), f"{name}: {path} does not exist"
    shipped = {Path(path).name for path in files if path.startswith("tools/test-data/")}
    assert shipped == files_its_tests_use(wrapper), f"{name}: test files shipped != test files used"
    test_data = sum((ROOT / path).stat().st_size for path in files if path.startswith("tools/test-data/"))
    assert test_data <= MIB, f"{name}: {test_data:,} bytes of test data, over 1 MiB"
    if 'macro="genome_input"' in wrapper.read_text():
        assert {"tools/tool_data_table_conf.xml.sample", "tools/tool-data/fasta_indexes.loc.sample"} <= set(files)
    if "fasta_indexes.loc" in shipped:
        assert "tools/tool_data_table_conf.xml.test" in files


def test_the_tests_data_table_is_the_shipped_sample_pointing_into_test_data():
    sample = ElementTree.parse(ROOT / "tools" / "tool_data_table_conf.xml.sample").getroot()
    test = ElementTree.parse(ROOT / "tools" / "tool_data_table_conf.xml.test").getroot()
    for shipped, tested in zip(sample.iter("table"), test.iter("table"), strict=True):
        assert shipped.attrib == tested.attrib and shipped.find("columns").text == tested.find("columns").text
        loc = Path(shipped.find("file").get("path")).name
        assert (ROOT / "tools" / "tool-data" / f"{loc}.sample").is_file()
        assert tested.find("file").get("path") == f"${{__HERE__}}/test-data/{loc}"


def test_every_wrapper_has_a_repository():
    wrappers = {path.stem for path in (ROOT / "tools").glob("*.xml") if path.name != "macros.xml"}
    assert {name.removeprefix("deepgmap_") for name in SHED["repositories"]} == wrappers


def test_the_tpv_file_routes_every_tool_installed_from_a_shed_or_a_checkout():
    """galaxy/tpv/deepgmap.yml (its syntax: `tpv lint` in tests/galaxy/run.sh): each wrapper's id,
    bare and in a Tool Shed's form, matched by exactly one entry with cores and memory; the tools
    whose wrappers ask for a CUDA device ask TPV for a GPU, and only they."""
    entries = yaml.safe_load((ROOT / "galaxy" / "tpv" / "deepgmap.yml").read_text())["tools"]
    for wrapper in (ROOT / "tools").glob("*.xml"):
        tool = ElementTree.parse(wrapper).getroot()
        if tool.tag != "tool":
            continue
        ids = [tool.get("id"), f"toolshed.example.org/repos/{SHED['owner']}/{tool.get('id')}/{tool.get('id')}/1.0"]
        for tool_id in ids:
            matched = [key for key in entries if re.fullmatch(key, tool_id)]
            assert len(matched) == 1, f"{tool_id}: matched by {matched}"
        entry = entries[matched[0]]
        assert entry["cores"] >= 1 and entry["mem"] >= 1
        wants_gpu = any(resource.get("type") == "cuda_device_count_max" for resource in tool.iter("resource"))
        assert entry.get("gpus", 0) == (1 if wants_gpu else 0), tool.get("id")


def test_the_admins_readme_says_what_each_wrapper_needs():
    """tools/readme.rst (in every repository): its table's cached genome, GPU and HTML columns are
    what each wrapper declares."""
    lines = (ROOT / "tools" / "readme.rst").read_text().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("deepgmap_")}
    yes = {True: "yes", False: "no"}
    for wrapper in (ROOT / "tools").glob("*.xml"):
        tool = ElementTree.parse(wrapper).getroot()
        if tool.tag != "tool":
            continue
        text = wrapper.read_text()
        wanted = [yes['macro="genome_input"' in text], yes["cuda_device_count_max" in text],
                  yes['format="html"' in text]]
        assert rows.pop(tool.get("id")) == wanted, tool.get("id")
    assert not rows, f"rows without a wrapper: {rows}"
