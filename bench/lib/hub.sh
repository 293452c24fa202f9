# A Hugging Face look-alike on nginx over HTTPS, for benchmarks and manual checks.
# Source this file, then: hub_start DIR; ...; hub_stop DIR.
#   - Hub on https://127.0.0.1:$HUB_PORT answers /{org}/{repo}/resolve/{rev}/{file} with a 302
#     to the CDN on https://127.0.0.2:$CDN_PORT/cdn/{file} (another host), adding
#     X-Repo-Commit, X-Linked-Size, X-Linked-Etag and ETag from DIR/files/{file}.meta.
#   - CDN serves DIR/files with byte ranges.
#   - A second pair, Hub on $HUB_CAPPED_PORT and CDN on $CDN_CAPPED_PORT, caps each connection
#     at $CAP (default 20m), like a CDN does.
# Needs nginx (Debian nginx-light) and openssl; installs nginx with apt when missing.

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
  local etags="" sizes="" f name sha size
  for f in "$d"/files/*.meta; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .meta)
    read -r sha size <"$f"
    etags+="    \"$name\" \"\\\"$sha\\\"\";"$'\n'
    sizes+="    \"$name\" $size;"$'\n'
  done
  cat >"$d/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  sendfile on;
  ssl_certificate $d/chain.pem;
  ssl_certificate_key $d/server.key;
  map \$file \$linked_etag {
    default "";
$etags  }
  map \$file \$linked_size {
    default "";
$sizes  }
$(hub_server "$HUB_PORT" "$CDN_PORT")
$(hub_server "$HUB_CAPPED_PORT" "$CDN_CAPPED_PORT")
  server {
    listen 127.0.0.2:$CDN_PORT ssl;
    location /cdn/ {
      alias $d/files/;
    }
  }
  server {
    listen 127.0.0.2:$CDN_CAPPED_PORT ssl;
    location /cdn/ {
      alias $d/files/;
      limit_rate ${CAP:-20m};
    }
  }
}
CONF
  nginx -p "$d" -c "$d/nginx.conf" &
  local i
  for i in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$d/ca.pem" "https://127.0.0.1:$HUB_PORT/" && return 0
    sleep 0.1
  done
  echo "nginx did not start; see $d/error.log" >&2
  return 1
}

hub_stop() { # DIR
  [ -f "$1/nginx.pid" ] && kill -QUIT "$(cat "$1/nginx.pid")" 2>/dev/null || true
}
