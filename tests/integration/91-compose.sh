#!/bin/bash
# docker-compose.yml, the Dockerfile and their configuration files, checked
# without a Docker engine (none runs here; docs/DEPLOY.md says what is left):
#  1. `docker-compose config -q` (Debian's docker-compose 1.29) accepts the
#     file with no warning;
#  2. on its normalised form: every file the stack mounts from the project
#     or builds from exists (Dockerfile COPY sources too, not excluded by
#     .dockerignore); every published port binds 127.0.0.1, is published
#     once, and reaches a port the service listens on; every Prometheus
#     target, ndtpipe scrape target, health URL, Grafana datasource and
#     dashboard path names a service and a port it serves or a file mounted;
#  3. promtool accepts deploy/prometheus/prometheus.yml and `ndtpipe check
#     config` the stack's scrape configuration;
#  4. every ndtpipe command the stack runs (compose commands and the model
#     bootstrap script) exists (`ndtpipe <cmd> --help`) and lists every flag
#     used; a command not built yet in this tree is noted, not failed.
. "$(dirname "$0")/lib.sh"
need docker-compose python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || fail "no project root"
unset NDT_BIND # the checks are of the file's defaults, not of this shell's overrides

# ---- 1. docker-compose config ----
docker-compose -f docker-compose.yml config -q 2>"$T/config.err" ||
    { cat "$T/config.err" >&2; fail "docker-compose config -q rejects docker-compose.yml"; }
[ -s "$T/config.err" ] && { cat "$T/config.err" >&2; fail "docker-compose config warns"; }
docker-compose -f docker-compose.yml config >"$T/compose.yml" 2>/dev/null || fail "docker-compose config"
# A broken copy must be rejected: the check above can fail.
sed 's/condition: service_healthy/condition: service_bogus/' docker-compose.yml >"$T/broken.yml"
docker-compose -f "$T/broken.yml" --project-directory "$ROOT" config -q 2>/dev/null &&
    fail "docker-compose config -q accepted an invalid depends_on condition"

# ---- 2. files, ports, names ----
python3 - "$ROOT" "$T/compose.yml" >"$T/commands" <<'PY' || fail "stack checks failed (above)"
import fnmatch, os, re, shlex, sys, yaml

root, compose_file = sys.argv[1], sys.argv[2]
cfg = yaml.safe_load(open(compose_file))
services = cfg["services"]
errors = []
err = errors.append
def note(msg): print(f"-- {msg}", file=sys.stderr)

def listen_ports(name, svc):
    """Ports the service listens on inside its container."""
    cmd = [str(c) for c in (svc.get("command") or [])]
    ports = set()
    for flag in ("--listen", "--web.listen-address"):
        for i, c in enumerate(cmd[:-1]):
            if c == flag:
                ports.add(int(cmd[i + 1].rsplit(":", 1)[1]))
    env = svc.get("environment") or {}
    for v in (env.get("KAFKA_LISTENERS") or "").split(","):
        if v and not v.startswith("CONTROLLER"):
            ports.add(int(v.rsplit(":", 1)[1]))
    # Images whose port is their documented default, not in the file.
    image_defaults = {"influxdb": 8086, "prom/prometheus": 9090, "grafana/grafana": 3000,
                      "gcr.io/cadvisor/cadvisor": 8080, "prom/node-exporter": 9100}
    image = (svc.get("image") or "").split(":")[0]
    if image in image_defaults:
        ports.add(image_defaults[image])
    return ports

listening = {n: listen_ports(n, s) for n, s in services.items()}

# Builds: context, Dockerfile, and the project files its COPY lines take.
for name, svc in services.items():
    b = svc.get("build")
    if not b:
        continue
    ctx = b["context"]
    df = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
    if not os.path.isfile(df):
        err(f"{name}: Dockerfile {df} missing")
        continue
    ignore_file = os.path.join(ctx, ".dockerignore")
    ignored = [l.strip() for l in open(ignore_file) if l.strip() and not l.startswith("#")] \
        if os.path.exists(ignore_file) else []
    text = open(df).read().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD") or any(w.startswith("--from") for w in words):
            continue
        for src in words[1:-1]:
            if src.startswith("--"):
                continue
            if src != "." and not os.path.exists(os.path.join(ctx, src)):
                err(f"{name}: Dockerfile copies {src}, which does not exist")
            if any(fnmatch.fnmatch(src, p) or src.startswith(p.rstrip("/") + "/") for p in ignored):
                err(f"{name}: Dockerfile copies {src}, which .dockerignore excludes")

# Mounts: project files must exist; host paths outside are the host's.
mounted = {}
for name, svc in services.items():
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, dst, kind = v.get("source"), v.get("target"), v.get("type")
        else:
            parts = v.split(":")
            src, dst = parts[0], parts[1]
            kind = "bind" if src.startswith("/") or src.startswith(".") else "volume"
        if kind == "volume":
            if src not in (cfg.get("volumes") or {}):
                err(f"{name}: volume {src} not declared")
            continue
        if src.startswith(root + "/") or src == root:
            if not os.path.exists(src):
                err(f"{name}: mounts {os.path.relpath(src, root)}, which does not exist")
            mounted[(name, dst)] = src
        else:
            note(f"{name}: mounts the host's {src} (not checked here)")

# Published ports: loopback, once, onto a port the service listens on.
published = {}
for name, svc in services.items():
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            host_ip, host, target = p.get("host_ip"), p.get("published"), p.get("target")
        else:
            m = re.fullmatch(r"(?:([\d.]+):)?(\d+):(\d+)(?:/tcp)?", str(p))
            if not m:
                err(f"{name}: port {p} not understood")
                continue
            host_ip, host, target = m.group(1), m.group(2), m.group(3)
        host, target = int(host), int(target)
        if host_ip != "127.0.0.1":
            err(f"{name}: port {host} binds {host_ip or 'every interface'}, not 127.0.0.1")
        if host in published:
            err(f"{name}: host port {host} already published by {published[host]}")
        published[host] = name
        if target not in listening[name]:
            err(f"{name}: publishes container port {target}, but listens on {sorted(listening[name])}")

def reaches(where, hostport):
    host, port = hostport.rsplit(":", 1)
    if host not in services:
        err(f"{where}: {host} is not a service of the stack")
    elif int(port) not in listening[host]:
        err(f"{where}: {host} does not listen on {port} (it does on {sorted(listening[host])})")

prom = yaml.safe_load(open(os.path.join(root, "deploy/prometheus/prometheus.yml")))
for job in prom["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for t in sc["targets"]:
            reaches(f"prometheus job {job['job_name']}", t)
scrape_cfg = yaml.safe_load(open(os.path.join(root, "deploy/ndtpipe/scrape.yml")))
for job in scrape_cfg["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for t in sc["targets"]:
            reaches(f"ndtpipe scrape job {job['job_name']}", t)
for name, svc in services.items():
    for key, url in (svc.get("environment") or {}).items():
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/healthz", str(url)) if key == "NDT_HEALTH_URL" else None
        if m and int(m.group(1)) not in listening[name]:
            err(f"{name}: NDT_HEALTH_URL port {m.group(1)} is not one it listens on")
    for c in svc.get("command") or []:
        m = re.match(r"influx2?:http://([^/]+)/", str(c))
        if m:
            reaches(f"{name} --udr", m.group(1))
    for dep in svc.get("depends_on") or {}:
        if dep not in services:
            err(f"{name}: depends on unknown service {dep}")

# Grafana: provisioning and dashboards mounted where the provider looks,
# the datasource URL names the InfluxDB service, the home dashboard exists.
g = services["grafana"]
dst_of = {dst: src for (n, dst), src in mounted.items() if n == "grafana"}
prov = dst_of.get("/etc/grafana/provisioning")
if not prov:
    err("grafana: deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning")
else:
    for f in os.listdir(os.path.join(prov, "dashboards")):
        for p in yaml.safe_load(open(os.path.join(prov, "dashboards", f)))["providers"]:
            if p["options"]["path"] not in dst_of:
                err(f"grafana: dashboard provider path {p['options']['path']} is not mounted")
    for f in os.listdir(os.path.join(prov, "datasources")):
        for d in yaml.safe_load(open(os.path.join(prov, "datasources", f)))["datasources"]:
            m = re.fullmatch(r"http://([^/]+)/?", d["url"])
            reaches(f"grafana datasource {d['name']}", m.group(1)) if m else err(f"datasource url {d['url']}")
            for var in re.findall(r"\$\{?([A-Z_]+)", open(os.path.join(prov, "datasources", f)).read()):
                if var not in (g.get("environment") or {}):
                    err(f"grafana: the datasource reads ${var}, which the service does not set")
home = (g.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home:
    base = [d for d in dst_of if home.startswith(d + "/")]
    if not base or not os.path.isfile(dst_of[base[0]] + home[len(base[0]):]):
        err(f"grafana: home dashboard {home} is not a mounted file")

# The ndtpipe invocations, one per line, for the shell part to check.
for name, svc in services.items():
    if not (svc.get("image") or "").startswith("ndtpipe"):
        continue
    entry = svc.get("entrypoint")
    if entry and entry != ["ndtpipe"]:
        script = [l for l in open(os.path.join(root, "Dockerfile")) if entry[0] in l and "COPY" in l]
        if not script:
            err(f"{name}: entrypoint {entry[0]} is not installed by the Dockerfile")
            continue
        path = os.path.join(root, script[0].split()[1])
        for line in open(path).read().replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True) if line.strip().startswith("ndtpipe ") else []
            if words:
                print(name + "\t" + " ".join(words[1:]))
    else:
        print(name + "\t" + " ".join(str(c) for c in svc["command"]))

for e in errors:
    print(f"FAIL: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

# ---- 3. the configurations, by their own checkers ----
if command -v promtool >/dev/null; then
    promtool check config deploy/prometheus/prometheus.yml >"$T/promtool.log" 2>&1 ||
        { cat "$T/promtool.log" >&2; fail "promtool rejects deploy/prometheus/prometheus.yml"; }
else
    note "promtool not installed: prometheus.yml checked for targets only"
fi
"$NDTPIPE" check config deploy/ndtpipe/scrape.yml >/dev/null ||
    fail "ndtpipe check config rejects deploy/ndtpipe/scrape.yml"

# ---- the Dockerfile's shape and its runtime-package step ----
grep -qE '^FROM debian:12 AS build' Dockerfile || fail "Dockerfile: no debian:12 build stage"
grep -qE '^FROM debian:12(-slim)? AS runtime' Dockerfile || fail "Dockerfile: no debian:12 runtime stage"
grep -q 'make deps && make' Dockerfile || fail "Dockerfile: the build stage does not run make deps && make"
user=$(awk '$1 == "USER" { u = $2 } END { print u }' Dockerfile)
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "Dockerfile: the image runs as root"
grep -q '^HEALTHCHECK ' Dockerfile && grep -q '^ENV NDT_HEALTH_URL=http://127.0.0.1:[0-9]*/healthz$' Dockerfile ||
    fail "Dockerfile: no HEALTHCHECK on /healthz"
# The runtime stage installs the packages of the libraries the binary
# loads; run that step here (this machine is Debian 12 too) on the binary
# just built: it must name packages, every one known to apt.
grep -q '^RUN deploy/ndtpipe/runtime-packages.sh build/ndtpipe' Dockerfile ||
    fail "Dockerfile: the runtime packages are not derived by deploy/ndtpipe/runtime-packages.sh"
pkgs=$(deploy/ndtpipe/runtime-packages.sh "$NDTPIPE") || fail "runtime-packages.sh failed"
[ -n "$pkgs" ] || fail "runtime-packages.sh found no packages"
# shellcheck disable=SC2086
apt-cache show $pkgs >/dev/null 2>&1 || fail "runtime packages unknown to apt: $pkgs"
note "runtime packages: $(tr '\n' ' ' <<<"$pkgs")"

# ---- 4. the ndtpipe commands and flags ----
[ -s "$T/commands" ] || fail "no ndtpipe commands found in the stack"
checked=0 pending=()
while IFS=$'\t' read -r service line; do
    read -ra words <<<"$line"
    cmd=("${words[0]}")
    [ "${words[0]}" = testbed ] && [ "${words[1]:-}" = campaign ] && cmd=(testbed campaign)
    if ! "$NDTPIPE" "${cmd[@]}" --help >"$T/help" 2>"$T/help.err"; then
        if grep -q "not built yet" "$T/help.err"; then
            pending+=("${cmd[*]} ($service)")
            continue
        fi
        cat "$T/help.err" >&2
        fail "$service: ndtpipe ${cmd[*]} --help fails"
    fi
    for w in "${words[@]}"; do
        case $w in
        --*) grep -qE -- "(^|[^-[:alnum:]])${w//./\\.}([^-[:alnum:]]|$)" "$T/help" ||
                 fail "$service: ndtpipe ${cmd[*]} has no flag $w in its --help" ;;
        esac
    done
    checked=$((checked + 1))
done <"$T/commands"
[ ${#pending[@]} -gt 0 ] && note "not built yet here, flags unchecked: ${pending[*]}"
note "$checked ndtpipe invocations match their --help"
[ "$checked" -gt 0 ] || fail "no ndtpipe invocation could be checked"
