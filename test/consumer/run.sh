#!/usr/bin/env bash
# The consumer test: packs ironflow, installs the tarball into a fresh Effect application in a
# temp directory (its own package.json with effect and the peers at the versions we test,
# tsconfig strict + exactOptionalPropertyTypes + nodenext, skipLibCheck false), type-checks it, and
# runs it and the `ironflow` command with plain node (no tsx anywhere) on the embedded database and
# on a PostgreSQL database of its own (created and dropped here). Exits non-zero on any failure.
#
#   bash test/consumer/run.sh            (PostgreSQL: TEST_DATABASE_URL / DATABASE_URL, default 127.0.0.1:5432/test)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
admin_url="${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ironflow-consumer.XXXXXX")"
db="ironflow_consumer_$$_$(date +%s)"
db_created=0

cleanup() {
  if [ "$db_created" = 1 ]; then
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "${IRONFLOW_CONSUMER_KEEP:-}" ]; then echo "consumer: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "consumer: FAILED: $*" >&2; exit 1; }
step() { echo "-- consumer [${SECONDS}s]: $*"; }
version() { node -p "require('$root/node_modules/$1/package.json').version"; }

step "npm pack"
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/ironflow-*.tgz)"
contents="$(tar tzf "$tarball" | sed 's#^package/##')"
unexpected="$(grep -Ev \
  '^(package\.json|bin/ironflow\.js|README\.md|LICENSE|CHANGELOG\.md|dist/.+|src/.+\.ts|migrations/[0-9]+_.+\.sql)$' \
  <<<"$contents" || true)"
[ -z "$unexpected" ] || fail "the tarball ships files it should not: $unexpected"
for file in dist/index.js dist/index.d.ts dist/bin.js migrations/0001_create_ironflow_schema.sql LICENSE CHANGELOG.md; do
  grep -qx "$file" <<<"$contents" || fail "the tarball has no $file"
done

step "a fresh application in $work/app"
mkdir -p "$work/app"
cp -R "$here/app/src" "$here/app/tsconfig.json" "$work/app/"
cat > "$work/app/package.json" <<JSON
{
  "name": "ironflow-consumer",
  "private": true,
  "type": "module",
  "dependencies": {
    "@effect/cli": "$(version @effect/cli)",
    "@effect/experimental": "$(version @effect/experimental)",
    "@effect/platform": "$(version @effect/platform)",
    "@effect/platform-node": "$(version @effect/platform-node)",
    "@effect/sql": "$(version @effect/sql)",
    "@effect/sql-pg": "$(version @effect/sql-pg)",
    "@electric-sql/pglite": "$(version @electric-sql/pglite)",
    "effect": "$(version effect)",
    "ironflow": "file:$tarball"
  },
  "devDependencies": {
    "@types/node": "$(version @types/node)",
    "@types/ws": "^8.5.0",
    "typescript": "$(version typescript)"
  }
}
JSON
cd "$work/app"
npm install --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
[ ! -e node_modules/tsx ] || fail "tsx is installed in the consumer: the test would not show that plain node suffices"
[ ! -e node_modules/ironflow/node_modules/effect ] || fail "ironflow got a second copy of effect"
[ "$(find . -path '*/node_modules/effect/package.json' | wc -l)" = 1 ] || fail "more than one copy of effect"

# With skipLibCheck false, @effect/platform's own declarations need the DOM lib (Storage, Transferable)
# and @effect/platform-node's need @types/ws: true of any Effect application, with or without ironflow.
step "tsc (strict, exactOptionalPropertyTypes, nodenext, skipLibCheck false)"
npx --no-install tsc -p tsconfig.json

step "imports under plain node"
node --input-type=module -e '
  const root = await import("ironflow")
  const runtime = await import("ironflow/WorkflowRuntime")
  if (root.WorkflowRuntime.layer !== runtime.layer) throw new Error("ironflow and ironflow/WorkflowRuntime differ")
  const console_ = await import("ironflow/Console")
  const api = await import("ironflow/ConsoleApi")
  if (typeof console_.layer !== "function" || api.ConsoleApi === undefined) throw new Error("ironflow/Console is incomplete")
  try {
    await import("ironflow/internal/uuid")
    throw new Error("ironflow/internal/* is importable")
  } catch (error) {
    if (error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error
  }'

run_app() { # $1: label; the database comes from the environment
  step "app on $1"
  node build/app.js
  local list count show
  list="$(npx --no-install ironflow instances list --type parcel --json)"
  [ "$(node -p "JSON.parse(process.argv[1]).length" "$list")" = 3 ] || fail "ironflow instances list: $list"
  count="$(npx --no-install ironflow dead-letters count --type parcel)"
  [ "$count" = 1 ] || fail "ironflow dead-letters count: $count"
  show="$(npx --no-install ironflow instances show parcel p-1 --workflows build/workflows.js --json)"
  [ "$(node -p "JSON.parse(process.argv[1]).state.status" "$show")" = delivered ] || fail "instances show: $show"
  if out="$(npx --no-install ironflow instances show parcel p-1 --workflows src/workflows.ts 2>&1)"; then
    fail "a .ts workflows module loaded without tsx"
  fi
  [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -q "needs tsx" ||
    fail "a .ts workflows module without tsx: $out"
  check_console
}

check_console() { # the web console from the installed package, on whatever database the environment names
  local log="$work/console.log" url="" pid overview
  # The bin itself, not npx: a signal to npx does not reach the command it started.
  node_modules/.bin/ironflow console --port 0 --workflows build/workflows.js >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    url="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n 1 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$url" ] || { kill "$pid" 2>/dev/null || true; fail "ironflow console did not start: $(cat "$log")"; }
  overview="$(curl -s "$url/api/overview")" || { kill "$pid"; fail "GET /api/overview: $(cat "$log")"; }
  [ "$(node -p "JSON.parse(process.argv[1]).types.find((t) => t.workflowType === 'parcel').deadLetters" "$overview")" = 1 ] ||
    { kill "$pid"; fail "console overview: $overview $(cat "$log")"; }
  curl -sf "$url/instance?type=parcel&id=p-1" | grep -q '&quot;status&quot;: &quot;delivered&quot;' ||
    { kill "$pid"; fail "console instance page"; }
  [ "$(curl -sf "$url/api/instance?type=parcel&id=p-1" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).state.status')" = delivered ] ||
    { kill "$pid"; fail "console /api/instance"; }
  curl -sf "$url/metrics" | grep -q '^# TYPE ironflow_dead_letters gauge$' || { kill "$pid"; fail "console /metrics"; }
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
}

IRONFLOW_DATA_DIR="$work/data" run_app "the embedded database"

psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
db_created=1
db_url="$(node -p 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; u.href' "$admin_url" "$db")"
DATABASE_URL="$db_url" run_app "PostgreSQL"

step "without the optional peer @electric-sql/pglite"
npm uninstall @electric-sql/pglite --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null
DATABASE_URL="$db_url" npx --no-install ironflow stats --json >/dev/null || fail "PostgreSQL needs PGlite"
if out="$(IRONFLOW_DATA_DIR="$work/data2" npx --no-install ironflow migrate 2>&1)"; then
  fail "the embedded database opened without @electric-sql/pglite"
fi
printf '%s' "$out" | grep -q "needs the package @electric-sql/pglite" || fail "without PGlite: $out"

echo "consumer: 1 passed, 0 failed"
