# Sourced by the benchmarks that load nginx: nginx_conf DIR LISTEN writes DIR/nginx.conf, one
# worker (pinned by the caller with taskset), no access log, temporary files in DIR, and one
# server on LISTEN (ip:port) that answers every request 200 with a short body.
nginx_conf() {
  cat >"$1/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/nginx-error.log;
events { worker_connections 16384; }
worker_rlimit_nofile 40000;
http {
  access_log off;
  client_body_temp_path $1;
  proxy_temp_path $1;
  fastcgi_temp_path $1;
  uwsgi_temp_path $1;
  scgi_temp_path $1;
  server { listen $2 backlog=4096; location / { return 200 "churnlab bench\n"; } }
}
NGINX
}
