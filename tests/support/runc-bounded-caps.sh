#!/bin/sh
# runc for the tests' own dockerds on a machine whose capability bounding set lacks some
# capabilities (this sandbox has no CAP_SYS_RESOURCE). A privileged container (buildx's
# docker-container builder always is one) asks runc for every capability dockerd knows, and runc
# fails with "unable to apply caps: operation not permitted" (and so does a privileged `docker exec`).
# This drops exactly the capabilities the machine cannot grant from the bundle's config.json (create,
# run) or the exec's process.json (--process), then runs Debian's runc.
# Only tests/support/sandboxRuntime.ts configures it, and only where the bounding set is incomplete.
set -eu
spec=""
previous=""
for arg in "$@"; do
    case "$previous" in --bundle | -b) spec=$arg/config.json ;; --process | -p) spec=$arg ;; esac
    case "$arg" in --bundle=*) spec=${arg#--bundle=}/config.json ;; --process=*) spec=${arg#--process=} ;; esac
    previous=$arg
done
if [ -n "$spec" ] && [ -f "$spec" ]; then
    python3 - "$spec" <<'PY'
import json, sys
names = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
         "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
         "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
         "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
         "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
         "CHECKPOINT_RESTORE"]
bounding = int(next(l for l in open("/proc/self/status") if l.startswith("CapBnd:")).split()[1], 16)
missing = {"CAP_" + n for i, n in enumerate(names) if not bounding >> i & 1}
path = sys.argv[1]
spec = json.load(open(path))
caps = (spec["process"] if "process" in spec else spec).get("capabilities") or {}
if missing and any(set(v) & missing for v in caps.values()):
    for key, value in caps.items():
        caps[key] = [c for c in value if c not in missing]
    with open(path, "w") as out:
        json.dump(spec, out)
PY
fi
exec /usr/sbin/runc "$@"
