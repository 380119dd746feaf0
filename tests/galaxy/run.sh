#!/usr/bin/env bash
# Lint the Galaxy wrappers and test them with planemo against a real Galaxy
# (26.1.2 from PyPI) that this script installs, starts and stops itself.
#
# Jobs find our commands the way they would in a production Galaxy: through a dependency
# resolver (galaxy_packages), which gives a tool its <requirement>s only at their exact name
# and version. The harness builds that resolver's tree from what DEEPGMAP_BIN's venv holds, so
# a misnamed or mis-versioned requirement leaves the tool without its command and its test
# fails; a copy of one wrapper requiring a version that does not exist proves it.
#
# Usage: tests/galaxy/run.sh TOOLS_DIR [WORKFLOW.gxwf.yml ...]
# Env:   DEEPGMAP_BIN   bin folder of the venv holding our package (its console scripts
#                       reach the jobs only through the resolver's env.sh files)
#        GALAXY_HOME    where the Galaxy and planemo venvs live (reused between runs)
#        PYTHON         interpreter for the venvs (default python3.11)
# Prints a closing 'N passed, N failed' line; exits non-zero on any failure.
set -euo pipefail

TOOLS_DIR=$(realpath "${1:?usage: run.sh TOOLS_DIR [WORKFLOW ...]}"); shift
WORKFLOWS=()
for wf in "$@"; do WORKFLOWS+=("$(realpath "$wf")"); done
: "${DEEPGMAP_BIN:?set DEEPGMAP_BIN to the folder with the deepgmap-* commands}"
DEEPGMAP_BIN=$(realpath "$DEEPGMAP_BIN")
GALAXY_HOME=$(realpath -m "${GALAXY_HOME:-$HOME/.cache/deepgmap/galaxy}")
PY=${PYTHON:-python3.11}
GALAXY_VERSION=26.1.2
PLANEMO_VERSION=0.75.47
RUN_DIR=$(realpath -m "${GALAXY_RUN_DIR:-$PWD/.galaxy-run}")
REPORTS="$RUN_DIR/reports"
rm -rf "$RUN_DIR"; mkdir -p "$REPORTS" "$RUN_DIR/tmp"   # planemo fails at the end without the report folder
export TMPDIR="$RUN_DIR/tmp"                              # planemo leaves temp files behind
export UV_CACHE_DIR="$GALAXY_HOME/uv-cache"

T0=$SECONDS
step() { echo "=== [$((SECONDS - T0))s] $*"; }

step "venvs for planemo $PLANEMO_VERSION and Galaxy $GALAXY_VERSION in $GALAXY_HOME"
mkdir -p "$GALAXY_HOME"
[ -x "$GALAXY_HOME/boot/bin/uv" ] || { "$PY" -m venv "$GALAXY_HOME/boot" && "$GALAXY_HOME/boot/bin/pip" install -q uv; }
UV="$GALAXY_HOME/boot/bin/uv"
BOOTPY="$GALAXY_HOME/boot/bin/python"
if [ ! -x "$GALAXY_HOME/planemo/bin/planemo" ]; then
  rm -rf "$GALAXY_HOME/planemo"
  "$UV" venv -q -p "$PY" "$GALAXY_HOME/planemo"
  "$UV" pip install -q --python "$GALAXY_HOME/planemo/bin/python" "planemo==$PLANEMO_VERSION"
fi
PLANEMO=("$GALAXY_HOME/planemo/bin/planemo" --directory "$RUN_DIR/planemo-workspace")
GXVENV="$GALAXY_HOME/galaxy-$GALAXY_VERSION"
if [ ! -e "$GXVENV/.installed" ]; then
  rm -rf "$GXVENV"
  # The `galaxy` metapackage pins a certifi release the registry lacks: use its
  # pins as constraints for the three packages we need, certifi unpinned.
  "$GALAXY_HOME/boot/bin/pip" download -q --no-deps --only-binary=:all: -d "$GALAXY_HOME/dl" "galaxy==$GALAXY_VERSION"
  "$BOOTPY" - "$GALAXY_HOME/dl/galaxy-$GALAXY_VERSION-py3-none-any.whl" "$GALAXY_HOME/constraints.txt" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    pins = [l.split(": ", 1)[1] for l in z.read(meta).decode().splitlines() if l.startswith("Requires-Dist: ")]
pins = [p for p in pins if not p.startswith("galaxy-") and "extra ==" not in p]
pins = ["certifi" if p.startswith("certifi==") else p for p in pins]
open(out, "w").write("\n".join(pins) + "\n")
PY
  "$UV" venv -q -p "$PY" "$GXVENV"
  "$UV" pip install -q --compile-bytecode --python "$GXVENV/bin/python" -c "$GALAXY_HOME/constraints.txt" \
    "galaxy-app==$GALAXY_VERSION" "galaxy-web-apps==$GALAXY_VERSION" "galaxy-web-client==$GALAXY_VERSION"
  touch "$GXVENV/.installed"   # an interrupted install is redone, never half used
fi

step "planemo lint"
# BioToolsValid looks the bio.tools xrefs up online (they were checked by hand); version_bumped
# compares with the Tool Shed: both need the network.
"${PLANEMO[@]}" lint --skip BioToolsValid --fail_level warn "$TOOLS_DIR"
if [ -f "$TOOLS_DIR/../.shed.yml" ]; then   # the suite's Tool Shed metadata
  "${PLANEMO[@]}" shed_lint --tools --skip version_bumped,BioToolsValid --fail_level warn "$TOOLS_DIR/.."
fi
for wf in "${WORKFLOWS[@]}"; do "${PLANEMO[@]}" workflow_lint --iwc --fail_level error "$wf"; done  # IWC: README, CHANGELOG, .dockstore.yml beside it

step "dependency tree for the galaxy_packages resolver"
# <name>/<version>/env.sh for each requirement of the wrappers that the venv holds at exactly
# that version, each putting only that package's commands on the job's PATH (not the venv's
# bin: its python would shadow the one Galaxy's metadata step needs).
DEPS="$RUN_DIR/deps"; mkdir -p "$DEPS"
"$DEEPGMAP_BIN/python" "$(dirname "$0")/requirements.py" tree "$TOOLS_DIR" "$DEPS"
# The proof that resolution is checked: merge_bigwigs requiring our package at a version that
# does not exist, as its own tool; its test must fail.
WRONG="$RUN_DIR/wrong-version"; mkdir -p "$WRONG"
ln -s "$TOOLS_DIR/test-data" "$WRONG/test-data"
sed 's|<token name="@TOOL_VERSION@">[^<]*</token>|<token name="@TOOL_VERSION@">0.0.0</token>|' \
  "$TOOLS_DIR/macros.xml" > "$WRONG/macros.xml"
sed 's|id="deepgmap_merge_bigwigs"|id="deepgmap_merge_bigwigs_wrong_version"|' \
  "$TOOLS_DIR/merge_bigwigs.xml" > "$WRONG/merge_bigwigs_wrong_version.xml"

step "start Galaxy (gunicorn, sqlite, local job runner, galaxy_packages resolver, no conda, no celery)"
SRV="$RUN_DIR/server"; mkdir -p "$SRV/data"
PORT=$("$BOOTPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
ADMIN_KEY=$("$BOOTPY" -c 'import secrets; print(secrets.token_hex(16))')
cat > "$SRV/tool_conf.xml" <<EOF
<?xml version="1.0"?>
<toolbox monitor="false">
  <tool file="data_source/upload.xml"/>
  <tool file="\${model_tools_path}/filter_empty_collection.xml"/>
  <tool file="\${model_tools_path}/extract_dataset.xml"/>
  <section id="deepgmap" name="DeepGMAP">
    <tool_dir dir="$TOOLS_DIR"/>
  </section>
  <section id="harness" name="Harness checks">
    <tool_dir dir="$WRONG"/>
  </section>
</toolbox>
EOF
# The README's sanitisation allowlist: our tool ids (Galaxy matches them as prefixes).
sed -n 's/^<tool id="\([^"]*\)".*/\1/p' "$TOOLS_DIR"/*.xml > "$SRV/sanitize_allowlist.txt"
cat > "$SRV/galaxy.yml" <<EOF
galaxy:
  data_dir: $SRV/data
  database_connection: "sqlite:///$SRV/data/universe.sqlite?isolation_level=IMMEDIATE"
  install_database_connection: "sqlite:///$SRV/data/install.sqlite?isolation_level=IMMEDIATE"
  database_auto_migrate: true
  tool_config_file: $SRV/tool_conf.xml
  tool_data_table_config_path: $TOOLS_DIR/tool_data_table_conf.xml.test   # the tests' cached genome
  tool_data_path: $SRV/tool-data
  sanitize_allowlist_file: $SRV/sanitize_allowlist.txt
  watch_tools: "false"
  conda_auto_init: false
  conda_auto_install: false
  tool_dependency_dir: $DEPS
  dependency_resolvers:
    - type: galaxy_packages
  bootstrap_admin_api_key: $ADMIN_KEY
  admin_users: ci@example.org
  galaxy_infrastructure_url: $URL
  id_secret: $("$BOOTPY" -c 'import secrets; print(secrets.token_hex(16))')
  enable_celery_tasks: false
  allow_path_paste: true
  check_upload_content: false
  cleanup_job: onsuccess
  job_config:
    runners:
      local:
        load: galaxy.jobs.runners.local:LocalJobRunner
        workers: 2
    execution:
      default: local
      environments:
        local:
          runner: local
EOF
(
  cd "$SRV"
  . "$GXVENV/bin/activate"   # jobs inherit it: Galaxy's metadata steps use its Python
  GALAXY_CONFIG_FILE="$SRV/galaxy.yml" exec gunicorn 'galaxy.webapps.galaxy.fast_factory:factory()' \
    -k galaxy.webapps.galaxy.workers.Worker -b "127.0.0.1:$PORT" --workers=1 --timeout 600 \
    --config python:galaxy.web_stack.gunicorn_config --no-control-socket
) > "$REPORTS/galaxy.log" 2>&1 &
GX_PID=$!
trap 'kill $GX_PID 2>/dev/null; wait $GX_PID 2>/dev/null || true' EXIT
for _ in $(seq 900); do
  curl -sf "$URL/api/version" >/dev/null && break
  kill -0 $GX_PID 2>/dev/null || { tail -n 50 "$REPORTS/galaxy.log"; echo "Galaxy died"; exit 1; }
  sleep 1
done
step "Galaxy $(curl -sf "$URL/api/version") up at $URL"

USER_ID=$(curl -sf -X POST -H "x-api-key: $ADMIN_KEY" -H 'Content-Type: application/json' "$URL/api/users" \
  -d '{"username":"ci","email":"ci@example.org","password":"ci-password-123"}' |
  "$BOOTPY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
USER_KEY=$(curl -sf -X POST -H "x-api-key: $ADMIN_KEY" "$URL/api/users/$USER_ID/api_key" | tr -d '"')
EXT=(--engine external_galaxy --galaxy_url "$URL" --galaxy_admin_key "$ADMIN_KEY" --galaxy_user_key "$USER_KEY")
report_args() { echo --test_output "$REPORTS/$1.html" --test_output_json "$REPORTS/$1.json"; }

RC=0
step "requirements as Galaxy's resolver sees them"
"$BOOTPY" - "$URL" "$ADMIN_KEY" <<'PY' || RC=1
import json, sys, urllib.request
url, key = sys.argv[1:]
def get(path):
    with urllib.request.urlopen(urllib.request.Request(url + path, headers={"x-api-key": key})) as response:
        return json.load(response)
ids = sorted(tool["id"] for tool in get("/api/tools?in_panel=false") if tool["id"].startswith("deepgmap_"))
bad = 0
for tool_id in ids:
    for requirement in get(f"/api/tools/{tool_id}/requirements"):
        name, version = requirement["name"], requirement["version"]
        resolved = requirement.get("dependency_type") is not None
        expected = not tool_id.endswith("_wrong_version") or name != "deepgmap-suite"
        print(f"  {tool_id}: {name} {version} {'resolved' if resolved else 'UNRESOLVED'}")
        bad += resolved != expected
if not ids:
    print("FAILED: Galaxy lists no deepgmap tool"); bad = 1
if bad:
    print(f"FAILED: {bad} requirement(s) resolved otherwise than the wrappers and the venv say")
sys.exit(1 if bad else 0)
PY
step "planemo test: a wrapper requiring a version that does not exist (its test must fail)"
"${PLANEMO[@]}" test "${EXT[@]}" $(report_args wrong-version) "$WRONG" > "$REPORTS/planemo-wrong-version.log" 2>&1 || true
step "planemo test: tools"
"${PLANEMO[@]}" test "${EXT[@]}" $(report_args tools) "$TOOLS_DIR" > "$REPORTS/planemo-tools.log" 2>&1 || RC=1
JSONS=("$REPORTS/tools.json")
if [ ${#WORKFLOWS[@]} -gt 0 ]; then   # tools and workflows cannot share one planemo call
  step "planemo test: workflows"
  "${PLANEMO[@]}" test "${EXT[@]}" $(report_args workflows) "${WORKFLOWS[@]}" \
    > "$REPORTS/planemo-workflows.log" 2>&1 || RC=1
  JSONS+=("$REPORTS/workflows.json")
fi
step "HTML reports as Galaxy shows them: our tools allowlisted (README), an uploaded page not"
"$BOOTPY" - "$URL" "$USER_KEY" <<'PY' || RC=1
import json, sys, time, urllib.request
url, key = sys.argv[1:]
def call(path, body=None, raw=False):
    request = urllib.request.Request(url + path, headers={"x-api-key": key, "Content-Type": "application/json"},
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request) as response:
        return (response.headers.get("content-type", "").split(";")[0], response.read()) if raw else json.load(response)
def html_datasets():
    for history in call("/api/histories"):
        for item in call(f"/api/histories/{history['id']}/contents"):
            if item["history_content_type"] == "dataset" and not item["deleted"]:
                dataset = call(f"/api/datasets/{item['id']}")
                if dataset["extension"] == "html" and dataset["state"] == "ok":
                    yield dataset
IMAGE = b"data:image/png;base64,"
history = call("/api/histories", {"name": "sanitisation control"})["id"]
upload = call("/api/tools/fetch", {"history_id": history, "targets": [{"destination": {"type": "hdas"}, "elements": [
    {"src": "pasted", "paste_content": '<html><body><img src="data:image/png;base64,iVBORw0KGgo="></body></html>',
     "ext": "html", "name": "control.html"}]}]})["outputs"][0]["id"]
for _ in range(120):
    if call(f"/api/datasets/{upload}")["state"] in ("ok", "error"):
        break
    time.sleep(1)
shown, bad = {}, 0
for dataset in html_datasets():
    tool = call(f"/api/jobs/{dataset['creating_job']}")["tool_id"]
    kind, body = call(f"/api/datasets/{dataset['id']}/display?preview=false", raw=True)
    shown.setdefault(tool, []).append((kind, IMAGE in body))
for tool, pages in sorted(shown.items()):
    ours = tool.startswith("deepgmap_")
    good = all(kind == ("text/html" if ours else "text/plain") for kind, _ in pages)
    print(f"  {tool}: {len(pages)} page(s) served as {', '.join(sorted({kind for kind, _ in pages}))}, "
          f"{sum(has_image for _, has_image in pages)} with images{'' if good else '  <- WRONG'}")
    bad += not good
# (a report may hold no figure: discover-motifs' when TF-MoDISco finds no pattern)
if not any(has_image for tool, pages in shown.items() if tool.startswith("deepgmap_") for _, has_image in pages):
    print("FAILED: no report of ours with images to check"); bad += 1
if not any(not tool.startswith("deepgmap_") for tool in shown):
    print("FAILED: no uploaded control page to check"); bad += 1
sys.exit(1 if bad else 0)
PY
kill $GX_PID; wait $GX_PID 2>/dev/null || true; trap - EXIT

step "summary (reports in $REPORTS)"
"$BOOTPY" - "$REPORTS/wrong-version.json" "${JSONS[@]}" <<'PY' || RC=1
import json, os, sys
ok = bad = 0
wrong, *reports = sys.argv[1:]
wrong = json.load(open(wrong))["tests"] if os.path.exists(wrong) else []
# 127: the shell found no such command, since the requirement did not resolve
if not wrong or any(((t["data"].get("job") or {}).get("exit_code")) != 127 for t in wrong):
    print("FAILED: the wrapper requiring a version that does not exist did not fail for want of its command"); bad += 1
else:
    print(f"wrong requirement version: its {len(wrong)} test(s) failed, command not found, as they must")
for path in reports:
    if not os.path.exists(path):
        print(f"FAILED: no report {path}"); bad += 1; continue
    for t in json.load(open(path))["tests"]:
        good = t["data"]["status"] == "success"
        ok += good; bad += not good
        if not good:
            print("FAILED", t["id"], str(t["data"].get("output_problems") or t["data"].get("execution_problem"))[:2000])
if ok + bad == 0:
    print("FAILED: planemo ran no test"); bad = 1
print(f"galaxy: {ok} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
exit $RC
