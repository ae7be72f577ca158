// What medusa-deploy wants in a host's /etc/docker/daemon.json, and which keys dockerd can apply
// without a restart. host/apply-daemon-json.sh does the merge on the host; both inputs it needs
// come from here so the list of reloadable keys has one source of truth.
import { parseByteSize } from "./buildkitdToml";

export interface DaemonSettingsInput {
    /** Bound of dockerd's own BuildKit cache (plain `docker build`, compose), e.g. "20GB". */
    buildkitKeepStorage: string;
    /** json-file/local log rotation size, e.g. "10m". */
    logMaxSize: string;
    /** How many rotated log files to keep. */
    logMaxFile: number;
    /** Further daemon.json keys the user wants; may not touch the keys managed here. */
    extra: Record<string, unknown>;
}

/** Top-level keys desiredDaemonSettings always sets; `extra` may not override them. */
export const MANAGED_DAEMON_KEYS: readonly string[] = ["builder", "features", "live-restore", "log-opts"];

/** For each managed key: what to do instead of setting it in daemonExtra (the dedicated setting, if any). */
export const MANAGED_DAEMON_KEY_ALTERNATIVES: Readonly<Record<string, string>> = {
    builder: "dockerd's BuildKit garbage collection (builder.gc) is set from medusa-deploy:buildkitKeepStorage, e.g. `pulumi config set medusa-deploy:buildkitKeepStorage 20GB`",
    features:
        "features.buildkit is always on; other features are read only when dockerd starts and are not managed here: to set them, set medusa-deploy:manageDaemon to false and edit the host's /etc/docker/daemon.json yourself",
    "live-restore":
        "live-restore is always true (containers keep running while dockerd restarts, which the blue/green switch relies on); to leave daemon.json alone, set medusa-deploy:manageDaemon to false",
    "log-opts":
        "log rotation is set from medusa-deploy:dockerLogMaxSize (max-size) and medusa-deploy:dockerLogMaxFile (max-file), e.g. `pulumi config set medusa-deploy:dockerLogMaxSize 50m`",
};

/**
 * Keys dockerd accepts but that would cut a running shop off from its data or its daemon. Refused in
 * daemonExtra; an operator who really means it changes them by hand with manageDaemon false.
 */
export const UNSAFE_DAEMON_KEYS: Readonly<Record<string, string>> = {
    hosts: "conflicts with the -H flag of the packaged docker.service (dockerd would refuse to start) and can expose the Docker API; add listeners with a systemd drop-in by hand",
    "data-root": "moves Docker's data: every image, container and volume, the shop's protected Postgres and Redis volumes included, would vanish from dockerd's view; move it by hand (stop dockerd, copy the folder, then change it)",
    "storage-driver": "makes every existing image, container and volume invisible to dockerd; change it by hand after migrating the data",
    "userns-remap": "gives dockerd a separate data folder, so the running containers and the data volumes vanish from its view; enable it by hand on a fresh host",
    tls: "configures a TCP listener for the Docker API (whoever reaches it is root on the host); set up remote API access by hand if you need it",
    tlsverify: "configures a TCP listener for the Docker API (whoever reaches it is root on the host); set up remote API access by hand if you need it",
    tlscacert: "configures a TCP listener for the Docker API (whoever reaches it is root on the host); set up remote API access by hand if you need it",
    tlscert: "configures a TCP listener for the Docker API (whoever reaches it is root on the host); set up remote API access by hand if you need it",
    tlskey: "configures a TCP listener for the Docker API (whoever reaches it is root on the host); set up remote API access by hand if you need it",
    "authorization-plugins": "hands every Docker API call to a plugin binary; a plugin that fails blocks every deploy, and one that is replaced decides what runs. Configure it by hand",
    "api-cors-header": "lets web pages call the Docker API from a browser",
    runtimes: "names binaries dockerd runs as root for containers",
    "default-runtime": "makes dockerd run every container with another runtime binary",
    "seccomp-profile": "replaces the system-call filter that confines every container",
    group: "changes which group may use the Docker socket (who is root on the host)",
    "exec-root": "moves dockerd's runtime state; the running containers would be lost to it",
    pidfile: "moves dockerd's pid file, which its service manager relies on",
    "userland-proxy-path": "names a binary dockerd runs as root for every published port",
    "init-path": "names a binary dockerd runs as PID 1 of containers",
    containerd: "points dockerd at another containerd, which holds the running containers",
    iptables: "turns off the firewall rules that publish the edge's port and isolate container networks",
};

/**
 * The daemonExtra keys medusa-deploy merges: networking, registries, logging level, limits. Each is
 * harmless to the running shop and to who controls the host; anything else is set by hand (with
 * manageDaemon false) by someone who knows what it does.
 */
export const ALLOWED_DAEMON_EXTRA_KEYS: readonly string[] = [
    "registry-mirrors", "insecure-registries", "allow-nondistributable-artifacts", "max-concurrent-downloads", "max-concurrent-uploads",
    "max-download-attempts", "dns", "dns-opts", "dns-search", "mtu", "bip", "default-address-pools", "fixed-cidr", "fixed-cidr-v6", "ipv6",
    "ip6tables", "icc", "userland-proxy", "default-ulimits", "default-shm-size", "shutdown-timeout", "debug", "log-level", "log-driver",
    "labels", "proxies", "no-new-privileges", "selinux-enabled", "init", "experimental",
];

/** Log drivers that read max-size and max-file, which medusa-deploy always sets in log-opts. */
const ROTATING_LOG_DRIVERS = ["json-file", "local"];

/**
 * Top-level daemon.json options of dockerd on Linux (the dockerd reference's full example), used to
 * recognise a misspelt key. A key not listed and not close to one is passed through: newer dockerd
 * releases add options, and apply-daemon-json.sh runs `dockerd --validate` before installing.
 */
export const KNOWN_DAEMON_KEYS: readonly string[] = [
    "allow-nondistributable-artifacts", "api-cors-header", "authorization-plugins", "bip", "bip6", "bridge", "builder",
    "cdi-spec-dirs", "cgroup-parent", "containerd", "containerd-namespace", "containerd-plugins-namespace", "data-root",
    "debug", "default-address-pools", "default-cgroupns-mode", "default-gateway", "default-gateway-v6",
    "default-ipc-mode", "default-network-opts", "default-runtime", "default-shm-size", "default-ulimits", "dns",
    "dns-opts", "dns-search", "exec-opts", "exec-root", "experimental", "features", "fixed-cidr", "fixed-cidr-v6",
    "group", "host-gateway-ip", "host-gateway-ips", "hosts", "icc", "init", "init-path", "insecure-registries", "ip",
    "ip-forward", "ip-masq", "ip6tables", "iptables", "ipv6", "labels", "live-restore", "log-driver", "log-format",
    "log-level", "log-opts", "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "mtu",
    "no-new-privileges", "node-generic-resources", "oom-score-adjust", "pidfile", "proxies", "raw-logs",
    "registry-mirrors", "runtimes", "seccomp-profile", "selinux-enabled", "shutdown-timeout", "storage-driver",
    "storage-opts", "swarm-default-advertise-addr", "tls", "tlscacert", "tlscert", "tlskey", "tlsverify",
    "userland-proxy", "userland-proxy-path", "userns-remap",
];

/** The JSON type dockerd expects for common keys; a wrong one fails `dockerd --validate` on the host. */
const DAEMON_KEY_TYPES: Readonly<Record<string, "array" | "boolean" | "number" | "string">> = {
    "registry-mirrors": "array", "insecure-registries": "array", dns: "array", "dns-search": "array", "dns-opts": "array",
    labels: "array", "authorization-plugins": "array", "exec-opts": "array", "storage-opts": "array",
    debug: "boolean", experimental: "boolean", ipv6: "boolean", icc: "boolean", "userland-proxy": "boolean", "no-new-privileges": "boolean",
    "max-concurrent-downloads": "number", "max-concurrent-uploads": "number", "max-download-attempts": "number", "shutdown-timeout": "number", mtu: "number",
    "log-level": "string", "default-runtime": "string", "log-driver": "string", bip: "string",
};

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let previous = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const current = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
            previous = current;
        }
    }
    return row[b.length];
}

function typeOf(value: unknown): string {
    return Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
}

/**
 * Everything wrong with the daemonExtra object, each as a phrase starting with the key, naming what
 * to set instead. Empty when it can be merged.
 */
export function daemonExtraProblems(extra: Record<string, unknown>): string[] {
    const problems: string[] = [];
    for (const [key, value] of Object.entries(extra)) {
        if (MANAGED_DAEMON_KEY_ALTERNATIVES[key]) {
            problems.push(`key "${key}" is managed by medusa-deploy and cannot be overridden: ${MANAGED_DAEMON_KEY_ALTERNATIVES[key]}`);
        } else if (UNSAFE_DAEMON_KEYS[key]) {
            problems.push(`key "${key}" is refused: it ${UNSAFE_DAEMON_KEYS[key]}`);
        } else if (key === "log-driver" && !ROTATING_LOG_DRIVERS.includes(String(value))) {
            problems.push(
                `key "log-driver" is ${JSON.stringify(value)}, but medusa-deploy sets log-opts max-size and max-file, which only the ${ROTATING_LOG_DRIVERS.join(" and ")} drivers read (dockerd would refuse to start): use "local" or "json-file", or set medusa-deploy:manageDaemon to false`,
            );
        } else if (!ALLOWED_DAEMON_EXTRA_KEYS.includes(key)) {
            const near = ALLOWED_DAEMON_EXTRA_KEYS.filter((k) => editDistance(k, key.toLowerCase()) <= 2);
            const known = KNOWN_DAEMON_KEYS.includes(key) ? "is a daemon.json option medusa-deploy does not merge" : "is not a daemon.json option medusa-deploy merges";
            problems.push(
                `key "${key}" ${known}${near.length > 0 ? ` (did you mean "${near[0]}"?)` : ""}: daemonExtra takes only ${ALLOWED_DAEMON_EXTRA_KEYS.join(", ")}. Set anything else by hand in /etc/docker/daemon.json, with manageDaemon false`,
            );
        } else if (DAEMON_KEY_TYPES[key] && typeOf(value) !== DAEMON_KEY_TYPES[key]) {
            const wanted = { array: `a list, e.g. {"${key}": ["…"]}`, boolean: "true or false", number: "a number", string: "a string" }[DAEMON_KEY_TYPES[key]];
            problems.push(`key "${key}" must be ${wanted}, got ${typeOf(value)} (dockerd would refuse the file)`);
        }
    }
    return problems;
}

/**
 * Top-level daemon.json keys dockerd applies on SIGHUP (`systemctl reload docker`), from the
 * "Configuration reload behavior" list in the dockerd reference and moby's daemon/reload.go.
 * Deliberately left out although the docs list it: "features" — some features are only read at
 * start (containerd-snapshotter, the BuildKit builder wiring), and DESIGN.md section 4 treats it as
 * needing a restart. Listing a key here that dockerd cannot reload would leave a change on disk
 * that the running daemon ignores; leaving one out only costs a restart (live-restore keeps
 * containers running).
 */
export const DOCKERD_RELOADABLE_KEYS: readonly string[] = [
    "debug",
    "labels",
    "live-restore",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "default-runtime",
    "runtimes",
    "authorization-plugins",
    "allow-nondistributable-artifacts",
    "insecure-registries",
    "registry-mirrors",
    "shutdown-timeout",
];

function isPlainObject(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function desiredDaemonSettings(input: DaemonSettingsInput): Record<string, unknown> {
    // Parsed only to reject a bad value before anything runs on a host; the string goes in as written.
    parseByteSize(input.buildkitKeepStorage);
    parseByteSize(input.logMaxSize);
    if (!Number.isSafeInteger(input.logMaxFile) || input.logMaxFile < 1) {
        throw new Error(`logMaxFile must be a whole number of at least 1, got ${input.logMaxFile}`);
    }
    if (!isPlainObject(input.extra)) throw new Error("extra daemon.json settings must be an object");
    for (const key of Object.keys(input.extra)) {
        if (MANAGED_DAEMON_KEYS.includes(key)) {
            // lib/deployConfig.ts reports this with the other settings first; this guards other callers.
            throw new Error(
                `extra daemon.json setting "${key}" would override a key medusa-deploy manages ` +
                `(${MANAGED_DAEMON_KEYS.join(", ")}); remove it from medusa-deploy:daemonExtra: ${MANAGED_DAEMON_KEY_ALTERNATIVES[key]}`,
            );
        }
    }
    return {
        ...input.extra,
        features: { buildkit: true },
        builder: { gc: { enabled: true, defaultKeepStorage: input.buildkitKeepStorage } },
        "live-restore": true,
        // The log driver is left as the host has it; these options apply to json-file and local.
        // dockerd wants every log-opts value as a string, max-file included.
        "log-opts": { "max-size": input.logMaxSize, "max-file": String(input.logMaxFile) },
    };
}

/** The environment host/apply-daemon-json.sh reads its inputs from. */
export function applyDaemonJsonEnv(desired: Record<string, unknown>): { DAEMON_JSON_DESIRED: string; DAEMON_RELOADABLE_KEYS: string } {
    return {
        DAEMON_JSON_DESIRED: JSON.stringify(desired),
        DAEMON_RELOADABLE_KEYS: DOCKERD_RELOADABLE_KEYS.join(" "),
    };
}
