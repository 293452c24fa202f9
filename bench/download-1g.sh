#!/usr/bin/env bash
# One 1 GiB download through a local HTTPS Hub look-alike (nginx, 302 to another host):
# wall time and peak RSS of `strata-model download` (verification included) beside curl
# (no verification) on the same file, then the warm-call cost, in process and as a process.
# Usage: bench/download-1g.sh [SIZE_MIB]   (files live in $BENCH_DIR, default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/hub.sh
size_mib=${1:-1024}
base=${BENCH_DIR:-/dev/shm}
w=$(mktemp -d "$base/strata-bench.XXXXXX")
trap 'hub_stop "$w"; rm -rf "$w"' EXIT
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }

cargo build --release --quiet --features cli --bin strata-model --example warm_ensure
bin=$PWD/target/release/strata-model

file=$w/bench-Q8_0.gguf
{ printf 'GGUF\003\000\000\000'; head -c $((size_mib * 1024 * 1024 - 8)) /dev/urandom; } >"$file"
hub_add_file "$w" "$file"
rm "$file"
hub_start "$w"
read -r sha size <"$w/files/bench-Q8_0.gguf.meta"

export STRATA_MODELS_DIR=$w/models HF_ENDPOINT=https://127.0.0.1:$HUB_PORT SSL_CERT_FILE=$w/ca.pem
"$bin" register bench --repo bench/bench --file bench-Q8_0.gguf \
  --revision 0123456789abcdef0123456789abcdef01234567 --sha256 "$sha" --size "$size" >/dev/null
url="$HF_ENDPOINT/bench/bench/resolve/0123456789abcdef0123456789abcdef01234567/bench-Q8_0.gguf"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), files in $base"
echo "file: $size bytes"
for i in 1 2 3; do
  "$bin" remove bench >/dev/null
  /usr/bin/time -f "strata-model download: %e s wall, %M KiB peak RSS" "$bin" download bench --quiet >/dev/null
  /usr/bin/time -f "curl -L (no verification): %e s wall, %M KiB peak RSS" \
    curl -sS -L --cacert "$w/ca.pem" -o "$w/curl.out" "$url"
  rm -f "$w/curl.out"
done
"$bin" verify bench
./target/release/examples/warm_ensure bench 10000
hyperfine -N --warmup 5 --runs 200 "$bin path bench" "$bin download bench --quiet" 2>&1 | grep -E 'Benchmark|Time'
