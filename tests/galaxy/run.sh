#!/usr/bin/env bash
# Lint the Galaxy wrappers and test them with planemo against a real Galaxy
# (26.1.2 from PyPI) that this script installs, starts and stops itself.
#
# Usage: tests/galaxy/run.sh TOOLS_DIR [WORKFLOW.gxwf.yml ...]
# Env:   DEEPGMAP_BIN   folder holding our console scripts (put on the jobs' PATH
#                       after Galaxy's own venv, so Galaxy keeps its Python)
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

step "start Galaxy (gunicorn, sqlite, local job runner, no conda, no celery)"
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
</toolbox>
EOF
cat > "$SRV/galaxy.yml" <<EOF
galaxy:
  data_dir: $SRV/data
  database_connection: "sqlite:///$SRV/data/universe.sqlite?isolation_level=IMMEDIATE"
  install_database_connection: "sqlite:///$SRV/data/install.sqlite?isolation_level=IMMEDIATE"
  database_auto_migrate: true
  tool_config_file: $SRV/tool_conf.xml
  watch_tools: "false"
  conda_auto_init: false
  conda_auto_install: false
  dependency_resolvers: []
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
  export PATH="$DEEPGMAP_BIN:$PATH"   # ours before any other install of them on this machine,
  . "$GXVENV/bin/activate"            # after Galaxy's venv: jobs inherit it, its metadata steps use Galaxy's Python
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
step "planemo test: tools"
"${PLANEMO[@]}" test "${EXT[@]}" $(report_args tools) "$TOOLS_DIR" > "$REPORTS/planemo-tools.log" 2>&1 || RC=1
JSONS=("$REPORTS/tools.json")
if [ ${#WORKFLOWS[@]} -gt 0 ]; then   # tools and workflows cannot share one planemo call
  step "planemo test: workflows"
  "${PLANEMO[@]}" test "${EXT[@]}" $(report_args workflows) "${WORKFLOWS[@]}" \
    > "$REPORTS/planemo-workflows.log" 2>&1 || RC=1
  JSONS+=("$REPORTS/workflows.json")
fi
kill $GX_PID; wait $GX_PID 2>/dev/null || true; trap - EXIT

step "summary (reports in $REPORTS)"
"$BOOTPY" - "${JSONS[@]}" <<'PY' || RC=1
import json, os, sys
ok = bad = 0
for path in sys.argv[1:]:
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
