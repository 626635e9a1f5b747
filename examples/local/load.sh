#!/bin/bash
# Loads the `local` demo catalogue into a running Goterra: a namespace `demo`, an endpoint
# `local` (kind local), recipes `master` and `worker`, the template `local-cluster` and the app
# `cluster`. Needs curl and jq, and an admin's API key (the template uses local-exec):
#   GOT_URL=http://127.0.0.1:8080 GOT_APIKEY=... examples/local/load.sh [DATA_DIR]
# Prints the ids to use for a run. (`goterra up --demo` loads the same catalogue at startup.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${GOT_URL:-http://127.0.0.1:8080}
data_dir=${1:-${GOT_LOCAL_DATA_DIR:-/tmp/goterra-local}}
# Terraform runs in the agent's temporary directory: a relative path would land there.
data_dir=$(realpath -m "$data_dir")
: "${GOT_APIKEY:?set GOT_APIKEY to an admin API key}"

call() { # METHOD PATH JSON -> prints the answer, fails on HTTP errors
  curl -fsS -X "$1" -H "X-API-Key: $GOT_APIKEY" -H 'Content-Type: application/json' \
    --data-binary "$3" "$url$2"
}

ns=$(call POST /deploy/ns '{"name":"demo"}' | jq -r .ns)
endpoint=$(call POST "/deploy/ns/$ns/endpoint" "$(jq -n --arg dir "$data_dir" \
  '{name:"local", kind:"local", public:false, config:{data_dir:$dir}}')" | jq -r .endpoint)
master=$(call POST "/deploy/ns/$ns/recipe" "$(jq -n --rawfile s "$here/master.sh" \
  '{name:"master", base:["local"], script:$s}')" | jq -r .recipe)
worker=$(call POST "/deploy/ns/$ns/recipe" "$(jq -n --rawfile s "$here/worker.sh" \
  '{name:"worker", base:["local"], script:$s}')" | jq -r .recipe)
template=$(call POST "/deploy/ns/$ns/template" "$(jq -n --rawfile tf "$here/local.tf" \
  '{name:"local-cluster", data:{local:$tf}, varrecipes:["master","worker"],
    inputs:{workers:"Number of workers"}, defaults:{workers:["2"]}}')" | jq -r .template)
app=$(call POST "/deploy/ns/$ns/app" "$(jq -n --arg t "$template" --arg m "$master" --arg w "$worker" \
  '{name:"cluster", template:$t, templaterecipes:{master:[$m], worker:[$w]}}')" | jq -r .app)

echo "namespace=$ns endpoint=$endpoint app=$app"
echo "start a run:"
echo "  curl -H \"X-API-Key: \$GOT_APIKEY\" -d '{\"name\":\"demo\",\"endpoint\":\"$endpoint\",\"inputs\":{\"workers\":\"2\"}}' $url/deploy/ns/$ns/run/$app"
