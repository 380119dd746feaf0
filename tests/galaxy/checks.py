"""The Galaxy harness's checks (tests/galaxy/run.sh), one subcommand each.

  checks.py galaxy-constraints WHEEL OUT
      pip constraints from the `galaxy` metapackage wheel's pins (certifi unpinned: the pinned
      release is missing from the registry), for installing its app packages alone.
  checks.py requirements URL ADMIN_KEY
      every requirement of our tools resolves through Galaxy's dependency resolver, except our
      package in the *_wrong_version copy.
  checks.py html URL USER_KEY
      Galaxy serves our tools' HTML reports as HTML (sanitisation allowlist) and an uploaded
      control page as plain text; at least one of our reports holds images.
  checks.py summary WRONG_VERSION_JSON REPORT_JSON ...
      planemo's reports: the wrong-version copy failed for want of its command, every other test
      passed; prints 'galaxy: N passed, N failed'.

Standard library only: it runs in the harness's bare boot venv. Exits non-zero on a failed check.
"""

import json
import os
import sys
import time
import urllib.request
import zipfile

from requirements import OUR_PACKAGE  # beside this file, standard library only too
IMAGE = b"data:image/png;base64,"
COMMAND_NOT_FOUND = 127  # the shell's exit status when a requirement did not resolve


class Api:
    """Galaxy's REST API at `url` as the user of `key`."""

    def __init__(self, url, key):
        self.url, self.key = url, key

    def call(self, path, body=None, raw=False):
        """JSON of GET `path` (POST with `body`); with `raw`, (content type, bytes)."""
        request = urllib.request.Request(
            self.url + path, headers={"x-api-key": self.key, "Content-Type": "application/json"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request) as response:
            if raw:
                return response.headers.get("content-type", "").split(";")[0], response.read()
            return json.load(response)


def galaxy_constraints(wheel, out):
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    pins = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")]
    pins = [pin for pin in pins if not pin.startswith("galaxy-") and "extra ==" not in pin]
    pins = ["certifi" if pin.startswith("certifi==") else pin for pin in pins]
    with open(out, "w") as handle:
        handle.write("\n".join(pins) + "\n")
    return 0


def requirements(url, key):
    api = Api(url, key)
    ids = sorted(tool["id"] for tool in api.call("/api/tools?in_panel=false") if tool["id"].startswith("deepgmap_"))
    if not ids:
        print("FAILED: Galaxy lists no deepgmap tool")
        return 1
    bad = 0
    for tool_id in ids:
        for requirement in api.call(f"/api/tools/{tool_id}/requirements"):
            name, version = requirement["name"], requirement["version"]
            resolved = requirement.get("dependency_type") is not None
            expected = not tool_id.endswith("_wrong_version") or name != OUR_PACKAGE
            print(f"  {tool_id}: {name} {version} {'resolved' if resolved else 'UNRESOLVED'}")
            bad += resolved != expected
    if bad:
        print(f"FAILED: {bad} requirement(s) resolved otherwise than the wrappers and the venv say")
    return 1 if bad else 0


def upload_control_page(api):
    """An HTML page with an image, uploaded by the user: Galaxy must not serve it as HTML."""
    history = api.call("/api/histories", {"name": "sanitisation control"})["id"]
    page = '<html><body><img src="data:image/png;base64,iVBORw0KGgo="></body></html>'
    upload = api.call("/api/tools/fetch", {"history_id": history, "targets": [{
        "destination": {"type": "hdas"},
        "elements": [{"src": "pasted", "paste_content": page, "ext": "html", "name": "control.html"}]}]})
    dataset_id = upload["outputs"][0]["id"]
    for _ in range(120):
        if api.call(f"/api/datasets/{dataset_id}")["state"] in ("ok", "error"):
            return
        time.sleep(1)


def html_datasets(api):
    for history in api.call("/api/histories"):
        for item in api.call(f"/api/histories/{history['id']}/contents"):
            if item["history_content_type"] == "dataset" and not item["deleted"]:
                dataset = api.call(f"/api/datasets/{item['id']}")
                if dataset["extension"] == "html" and dataset["state"] == "ok":
                    yield dataset


def html(url, key):
    api = Api(url, key)
    upload_control_page(api)
    shown, bad = {}, 0
    for dataset in html_datasets(api):
        tool = api.call(f"/api/jobs/{dataset['creating_job']}")["tool_id"]
        kind, body = api.call(f"/api/datasets/{dataset['id']}/display?preview=false", raw=True)
        shown.setdefault(tool, []).append((kind, IMAGE in body))
    for tool, pages in sorted(shown.items()):
        good = all(kind == ("text/html" if tool.startswith("deepgmap_") else "text/plain") for kind, _ in pages)
        print(f"  {tool}: {len(pages)} page(s) served as {', '.join(sorted({kind for kind, _ in pages}))}, "
              f"{sum(has_image for _, has_image in pages)} with images{'' if good else '  <- WRONG'}")
        bad += not good
    # (a report may hold no figure: discover-motifs' when TF-MoDISco finds no pattern)
    if not any(has_image for tool, pages in shown.items() if tool.startswith("deepgmap_") for _, has_image in pages):
        print("FAILED: no report of ours with images to check")
        bad += 1
    if not any(not tool.startswith("deepgmap_") for tool in shown):
        print("FAILED: no uploaded control page to check")
        bad += 1
    return 1 if bad else 0


def summary(wrong_version, *reports):
    bad = ok = 0
    wrong = json.load(open(wrong_version))["tests"] if os.path.exists(wrong_version) else []
    if not wrong or any((test["data"].get("job") or {}).get("exit_code") != COMMAND_NOT_FOUND for test in wrong):
        print("FAILED: the wrapper requiring a version that does not exist did not fail for want of its command")
        bad += 1
    else:
        print(f"wrong requirement version: its {len(wrong)} test(s) failed, command not found, as they must")
    for path in reports:
        if not os.path.exists(path):
            print(f"FAILED: no report {path}")
            bad += 1
            continue
        for test in json.load(open(path))["tests"]:
            good = test["data"]["status"] == "success"
            ok += good
            bad += not good
            if not good:
                problems = test["data"].get("output_problems") or test["data"].get("execution_problem")
                print("FAILED", test["id"], str(problems)[:2000])
    if ok + bad == 0:
        print("FAILED: planemo ran no test")
        bad = 1
    print(f"galaxy: {ok} passed, {bad} failed")
    return 1 if bad else 0


CHECKS = {"galaxy-constraints": galaxy_constraints, "requirements": requirements, "html": html, "summary": summary}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CHECKS:
        sys.exit(__doc__)
    sys.exit(CHECKS[sys.argv[1]](*sys.argv[2:]))
