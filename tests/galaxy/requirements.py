"""The wrappers' <requirement>s (bioconda names and versions) as PyPI installs them.

  requirements.py constraints TOOLS_DIR
      pip constraints pinning every requirement to the wrappers' version, so that the venv the
      tests run in holds what a Galaxy would resolve (our own package left out: it is the
      checkout being installed).
  requirements.py tree TOOLS_DIR DEPS_DIR
      the galaxy_packages resolver's tree, DEPS_DIR/<name>/<version>/env.sh, for each requirement
      that this Python's environment holds at exactly the wrappers' version; env.sh puts a bin/
      beside it on the job's PATH, holding that package's own commands only (links to this
      environment's console scripts), as a conda package would: a job gets our commands only if
      our package's requirement resolves.

Standard library only: it runs in a bare venv, before anything is installed.
"""

import importlib.metadata
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

OUR_PACKAGE = "deepgmap-suite"
# bioconda name -> the PyPI distributions that provide it (the same name where not listed)
DISTRIBUTIONS = {"tensorflow": ["tensorflow", "tensorflow-cpu"], "pybigwig": ["pyBigWig"], "macs3": ["MACS3"]}


def wrapper_requirements(tools):
    """{(name, version)} over every wrapper in `tools`, @TOKEN@ versions resolved by macros.xml."""
    tokens = {token.get("name"): token.text for token in ElementTree.parse(tools / "macros.xml").iter("token")}
    return {(requirement.text, tokens.get(requirement.get("version"), requirement.get("version")))
            for wrapper in tools.glob("*.xml") for requirement in ElementTree.parse(wrapper).iter("requirement")}


def installed(name):
    """The installed distributions that provide `name`."""
    found = []
    for distribution in DISTRIBUTIONS.get(name, [name]):
        try:
            found.append(importlib.metadata.distribution(distribution))
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def constraints(tools):
    return [f"{distribution}=={version}" for name, version in sorted(wrapper_requirements(tools))
            if name != OUR_PACKAGE for distribution in DISTRIBUTIONS.get(name, [name])]


def write_tree(tools, deps):
    scripts = Path(sys.executable).parent
    for name, version in sorted(wrapper_requirements(tools)):
        distributions = installed(name)
        matching = [d for d in distributions if d.version == version]
        if not matching:
            versions = ", ".join(sorted(d.version for d in distributions)) or "absent"
            print(f"  {name} {version}: not in the venv ({versions}), left unresolved")
            continue
        # its files in the venv's bin/ (console scripts and plain scripts, as MACS3's macs3)
        commands = sorted(Path(file).name for file in matching[0].files or [] if Path(file).parent.name == "bin"
                          and (scripts / Path(file).name).is_file())
        folder = deps / name / version
        (folder / "bin").mkdir(parents=True)
        for command in commands:
            (folder / "bin" / command).symlink_to(scripts / command)
        (folder / "env.sh").write_text(f'export PATH="{folder / "bin"}:$PATH"\n')
        print(f"  {name} {version}: {len(commands)} command(s)")


if __name__ == "__main__":
    command, tools, *rest = sys.argv[1:]
    if command == "constraints":
        print("\n".join(constraints(Path(tools))))
    else:
        write_tree(Path(tools), Path(rest[0]))
