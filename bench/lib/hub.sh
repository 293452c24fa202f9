# A Hugging Face look-alike on nginx over HTTPS, for benchmarks and manual checks.
# Source this file, then: hub_start DIR; ...; hub_stop DIR.
#   - Hub on https://127.0.0.1:$HUB_PORT answers /{org}/{repo}/resolve/{rev}/{file} with a 302
#     to the CDN on https://127.0.0.2:$CDN_PORT/cdn/{file} (another host), adding
#     X-Repo-Commit, X-Linked-Size, X-Linked-Etag and ETag from DIR/files/{file}.meta.
#   - CDN serves DIR/files with byte ranges.
#   - A second pair, Hub on $HUB_CAPPED_PORT and CDN on $CDN_CAPPED_PORT, caps each connection
#     at $CAP (default 20m), like a CDN does.
#   - A WAN pair: clients use the Hub at https://127.0.0.1:$HUB_WAN_PORT, a delay line (bench/
#     delay-line) adding $HUB_DELAY_MS ms each way (80 ms round trip) in front of nginx; its 302
#     points at the CDN's delay line, https://127.0.0.2:$CDN_WAN_PORT ($CDN_DELAY_MS ms each way,
#     20 ms round trip), which also caps each connection at $WAN_CAP bytes/s (20 MB/s), steadily.
#     (nginx's limit_rate is not used there: it grants every request a full second's allowance
#     up front, minus what its connection already sent — src/http/ngx_http_write_filter_module.c,
#     `limit = limit_rate * (ngx_time() - start_sec + 1) - (c->sent - limit_rate_after)` — so it
#     rewards fresh connections with a burst, which a CDN edge does not.)
#   - Every request is logged to DIR/access.log as "port connection connection_requests method
#     status" (nginx's $connection and $connection_requests): hub_counts reads it.
# Needs nginx (Debian nginx-light), openssl and cargo; installs nginx with apt when missing.

hub_install() {
  command -v nginx >/dev/null && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
}

hub_certs() { # DIR
  local d=$1
  [ -f "$d/ca.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 3650 \
    -subj "/CN=strata test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/server.pem" -days 3650 -extfile "$d/ext.cnf" 2>/dev/null
  cat "$d/server.pem" "$d/ca.pem" >"$d/chain.pem"
}

# hub_add_file DIR PATH: serve PATH (hard-linked or copied into DIR/files) with its metadata.
hub_add_file() {
  local d=$1 src=$2 name sha size
  name=$(basename "$src")
  mkdir -p "$d/files"
  ln -f "$src" "$d/files/$name" 2>/dev/null || cp "$src" "$d/files/$name"
  chmod 644 "$d/files/$name"
  sha=$(openssl dgst -sha256 -r "$src" | cut -d' ' -f1)
  size=$(stat -c %s "$src")
  printf '%s %s\n' "$sha" "$size" >"$d/files/$name.meta"
}

# hub_server PORT CDN_PORT: an nginx server block answering resolve URLs with a 302 to the CDN.
hub_server() {
  cat <<BLOCK
  server {
    listen 127.0.0.1:$1 ssl;
    keepalive_requests 10000;
    location ~ ^/(?<repo>[^/]+/[^/]+)/resolve/(?<rev>[^/]+)/(?<file>[^/]+)\$ {
      if (\$linked_size = "") { return 404; }
      add_header X-Repo-Commit \$rev always;
      add_header X-Linked-Etag \$linked_etag always;
      add_header X-Linked-Size \$linked_size always;
      add_header ETag \$linked_etag always;
      return 302 https://127.0.0.2:$2/cdn/\$file;
    }
  }
BLOCK
}

# hub_nginx_head DIR LOG_FORMAT: an nginx.conf up to its http block's shared settings: the
# process in DIR, the access log DIR/access.log in LOG_FORMAT (named counts), TLS from DIR.
hub_nginx_head() {
  cat <<HEAD
daemon off;
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 256; }
http {
  log_format counts '$2';
  access_log $1/access.log counts;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  sendfile on;
  # TLS 1.3 as on the real Hub and its CDN (nginx 1.22, Debian 12, offers only up to 1.2 by
  # default: a two-round-trip handshake).
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate $1/chain.pem;
  ssl_certificate_key $1/server.key;
HEAD
}

hub_start() { # DIR
  local d=$1
  hub_install
  mkdir -p "$d/files" "$d/tmp"
  chmod 755 "$d" "$d/files"
  hub_certs "$d"
  HUB_PORT=${HUB_PORT:-18443}
  CDN_PORT=${CDN_PORT:-18444}
  HUB_CAPPED_PORT=${HUB_CAPPED_PORT:-18445}
  CDN_CAPPED_PORT=${CDN_CAPPED_PORT:-18446}
  HUB_WAN_PORT=${HUB_WAN_PORT:-18447}      # the delay line; nginx listens on +10
  CDN_WAN_PORT=${CDN_WAN_PORT:-18448}      # the delay line; nginx listens on +10
  HUB_DELAY_MS=${HUB_DELAY_MS:-40}
  CDN_DELAY_MS=${CDN_DELAY_MS:-10}
  WAN_CAP=${WAN_CAP:-20000000}
  local etags="" sizes="" f name sha size
  for f in "$d"/files/*.meta; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .meta)
    read -r sha size <"$f"
    etags+="    \"$name\" \"\\\"$sha\\\"\";"$'\n'
    sizes+="    \"$name\" $size;"$'\n'
  done
  cat >"$d/nginx.conf" <<CONF
$(hub_nginx_head "$d" '$server_port $connection $connection_requests $request_method $status')
  map \$file \$linked_etag {
    default "";
$etags  }
  map \$file \$linked_size {
    default "";
$sizes  }
$(hub_server "$HUB_PORT" "$CDN_PORT")
$(hub_server "$HUB_CAPPED_PORT" "$CDN_CAPPED_PORT")
$(hub_server "$((HUB_WAN_PORT + 10))" "$CDN_WAN_PORT")
  server {
    listen 127.0.0.2:$CDN_PORT ssl;
    location /cdn/ {
      alias $d/files/;
    }
  }
  server {
    listen 127.0.0.2:$CDN_CAPPED_PORT ssl;
    keepalive_requests 10000;
    location /cdn/ {
      alias $d/files/;
      limit_rate ${CAP:-20m};
    }
  }
  server {
    listen 127.0.0.2:$((CDN_WAN_PORT + 10)) ssl;
    keepalive_requests 10000;
    location /cdn/ {
      alias $d/files/;
    }
  }
}
CONF
  nginx -p "$d" -c "$d/nginx.conf" &
  hub_delay_lines "$d" "$HUB_WAN_PORT" "$CDN_WAN_PORT"
  hub_wait "$d" "https://127.0.0.1:$HUB_PORT/"
}

# hub_delay_lines DIR HUB_PORT CDN_PORT: the WAN's delay lines, on 127.0.0.1:HUB_PORT
# ($HUB_DELAY_MS ms each way) and 127.0.0.2:CDN_PORT ($CDN_DELAY_MS ms each way, $WAN_CAP
# bytes/s per connection), in front of nginx on each port + 10; their pids in DIR.
hub_delay_lines() {
  local d=$1 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  (cd "$root/bench/delay-line" && cargo build --release --quiet)
  "$root/bench/delay-line/target/release/delay-line" "127.0.0.1:$2" "127.0.0.1:$(($2 + 10))" "$HUB_DELAY_MS" &
  echo $! >"$d/delay-hub.pid"
  "$root/bench/delay-line/target/release/delay-line" "127.0.0.2:$3" "127.0.0.2:$(($3 + 10))" "$CDN_DELAY_MS" "$WAN_CAP" &
  echo $! >"$d/delay-cdn.pid"
}

# hub_wait DIR URL: waits (5 s at most) for nginx to answer URL.
hub_wait() {
  local i
  for i in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$1/ca.pem" "$2" && return 0
    sleep 0.1
  done
  echo "nginx did not start; see $1/error.log" >&2
  return 1
}

hub_stop() { # DIR
  [ -f "$1/nginx.pid" ] && kill -QUIT "$(cat "$1/nginx.pid")" 2>/dev/null || true
  local f
  for f in "$1"/delay-*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
}

# hub_counts DIR HUB_NGINX_PORT CDN_NGINX_PORT: "hub_requests hub_connections cdn_requests
# cdn_connections" logged since the last hub_counts_reset.
hub_counts() {
  awk -v h="$2" -v c="$3" '
    $1 == h { hr++; hc[$2] = 1 }
    $1 == c { cr++; cc[$2] = 1 }
    END { printf "%d %d %d %d\n", hr, length(hc), cr, length(cc) }' "$1/access.log"
}

hub_counts_reset() { # DIR
  : >"$1/access.log"
}
