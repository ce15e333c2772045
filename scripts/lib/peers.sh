# Sourced by scripts/load-proxy.sh, scripts/ab-floor.sh, scripts/callgrind-proxy.sh and
# scripts/build-pgo.sh: the tools they need, waiting for a server, the two nginx peers
# portvakt is measured against (their configuration, starting them, their workers), and (from
# scripts/lib/checks.sh) building what is measured and checking wrk's output.
# Makes WORK, a scratch directory; on exit every background job and every nginx started in it
# is stopped and WORK removed.

# shellcheck source=checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; for p in "$WORK"/*/nginx.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$WORK"' EXIT

install() { # $@: Debian packages
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@" >/dev/null
}

need() { # $@: commands, each installed from the Debian package of its name when missing
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || install "$tool"
  done
  NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
}

wait_for() { # $1: URL, $2: what, $3: log file
  for _ in $(seq 300); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not come up ($1)" >&2
  cat "$3" >&2
  exit 1
}

wait_ready() { # $1: a portvakt API's host:port, $2: what, $3: its log file
  for _ in $(seq 300); do
    curl -sf "http://$1/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "$2 is not ready (http://$1/readyz)" >&2
  cat "$3" >&2
  exit 1
}

# nginx's configuration, as both peers use it: keep-alive without a request limit on both
# sides, as portvakt's; no access log (portvakt keeps none); a listen backlog of 4096, as
# portvakt's (nginx's default, 511, drops SYNs when 1000 wrk connections open at once, and wrk
# counts the retransmission's second as timeouts).
nginx_conf() { # $1: name, $2: main-context lines, $3: server blocks -> $WORK/$1/nginx.conf
  mkdir -p "$WORK/$1"
  cat >"$WORK/$1/nginx.conf" <<NGINX
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/error.log warn;
$2
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/$1/body;
  proxy_temp_path $WORK/$1/proxy;
  fastcgi_temp_path $WORK/$1/fastcgi;
  uwsgi_temp_path $WORK/$1/uwsgi;
  scgi_temp_path $WORK/$1/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  $3
}
NGINX
}

start_nginx() { # $1: name; starts nginx with $WORK/$1/nginx.conf (from nginx_conf), or exits 1 with its complaint
  "$NGINX_BIN" -p "$WORK/$1" -c "$WORK/$1/nginx.conf" 2>"$WORK/$1/start.log" ||
    { cat "$WORK/$1/start.log" >&2; exit 1; }
}

workers() { # $1: name of an nginx started by start_nginx -> its worker processes' pids
  pgrep -P "$(cat "$WORK/$1/nginx.pid")" | tr '\n' ' '
}

# The upstream every proxy forwards to: 200 "ok".
upstream_server() { # $1: listen address
  echo "server { listen $1 backlog=4096; location / { default_type text/plain; return 200 \"ok\"; } }"
}

# nginx as a plain reverse proxy: validates nothing, a keep-alive pool to the upstream, and the
# forwarding headers portvakt sets too.
plain_proxy_server() { # $1: listen address, $2: upstream address
  cat <<NGINX
upstream app { server $2; keepalive 64; keepalive_requests 100000000; }
  server {
    listen $1 backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto http;
    }
  }
NGINX
}
