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
TPV_VERSION=3.3.0
RUN_DIR=$(realpath -m "${GALAXY_RUN_DIR:-$PWD/.galaxy-run}")
REPORTS="$RUN_DIR/reports"
rm -rf "$RUN_DIR"; mkdir -p "$REPORTS" "$RUN_DIR/tmp"   # planemo fails at the end without the report folder
export TMPDIR="$RUN_DIR/tmp"                              # planemo leaves temp files behind
export UV_CACHE_DIR="$GALAXY_HOME/uv-cache"
CHECKS=$(realpath "$(dirname "$0")/checks.py")   # the checks below, standard library only

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
  "$BOOTPY" "$CHECKS" galaxy-constraints "$GALAXY_HOME/dl/galaxy-$GALAXY_VERSION-py3-none-any.whl" \
    "$GALAXY_HOME/constraints.txt"
  "$UV" venv -q -p "$PY" "$GXVENV"
  "$UV" pip install -q --compile-bytecode --python "$GXVENV/bin/python" -c "$GALAXY_HOME/constraints.txt" \
    "galaxy-app==$GALAXY_VERSION" "galaxy-web-apps==$GALAXY_VERSION" "galaxy-web-client==$GALAXY_VERSION"
  touch "$GXVENV/.installed"   # an interrupted install is redone, never half used
fi
# TPV's linter imports Galaxy's job classes: it lives in Galaxy's venv.
[ -x "$GXVENV/bin/tpv" ] || "$UV" pip install -q --python "$GXVENV/bin/python" -c "$GALAXY_HOME/constraints.txt" \
  "total-perspective-vortex==$TPV_VERSION"

step "planemo lint"
# BioToolsValid looks the bio.tools xrefs up online (they were checked by hand); version_bumped
# compares with the Tool Shed: both need the network.
"${PLANEMO[@]}" lint --skip BioToolsValid --fail_level warn "$TOOLS_DIR"
if [ -f "$TOOLS_DIR/../.shed.yml" ]; then   # the suite's Tool Shed metadata
  "${PLANEMO[@]}" shed_lint --tools --skip version_bumped,BioToolsValid --fail_level warn "$TOOLS_DIR/.."
fi
for wf in "${WORKFLOWS[@]}"; do "${PLANEMO[@]}" workflow_lint --iwc --fail_level error "$wf"; done  # IWC: README, CHANGELOG, .dockstore.yml beside it

step "tpv lint: the job routing admins load (cores, memory, GPUs per tool)"
"$GXVENV/bin/tpv" lint "$TOOLS_DIR/../galaxy/tpv/deepgmap.yml"

step "dependency tree for the galaxy_packages resolver"
# <name>/<version>/env.sh for each requirement of the wrappers that the venv holds at exactly
# that version, each putting only that package's commands on the job's PATH (not the venv's
# bin: its python would shadow the one Galaxy's metadata step needs).
DEPS="$RUN_DIR/deps"; mkdir -p "$DEPS"
"$DEEPGMAP_BIN/python" "$(dirname "$CHECKS")/requirements.py" tree "$TOOLS_DIR" "$DEPS"
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
"$BOOTPY" "$CHECKS" requirements "$URL" "$ADMIN_KEY" || RC=1
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
"$BOOTPY" "$CHECKS" html "$URL" "$USER_KEY" || RC=1
kill $GX_PID; wait $GX_PID 2>/dev/null || true; trap - EXIT

step "summary (reports in $REPORTS)"
"$BOOTPY" "$CHECKS" summary "$REPORTS/wrong-version.json" "${JSONS[@]}" || RC=1
exit $RC
