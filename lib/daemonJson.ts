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
            throw new Error(
                `extra daemon.json setting "${key}" would override a key medusa-deploy manages ` +
                `(${MANAGED_DAEMON_KEYS.join(", ")}); set it through the dedicated option instead`,
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
