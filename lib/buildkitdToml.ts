// Renders the buildkitd.toml of the docker-container builder that @pulumi/docker-build uses.
// daemon.json's builder.gc only bounds dockerd's own BuildKit; a buildx builder runs its own buildkitd
// whose cache is bounded only by this file (DESIGN.md section 4).
//
// Sizes are rendered as plain byte counts and durations as plain seconds: every buildkitd release
// reads integers, while the "20GB" / "48h" string forms only exist in newer ones. gckeepstorage and
// keepBytes are deprecated in favour of reservedSpace since BuildKit 0.17 but are still honoured,
// and they are the only names older builders understand.

const BYTES_PER_UNIT: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Parses a size the way dockerd does for daemon.json (docker/go-units RAMInBytes): binary units,
 * case-insensitive, so "20GB", "20g", "20GiB" are all 20 * 1024^3 bytes. The same string then means
 * the same bound for dockerd's BuildKit and for the builder's.
 */
export function parseByteSize(size: string | number): number {
    if (typeof size === "number") {
        if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`size ${size} must be a positive whole number of bytes`);
        return size;
    }
    const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(size);
    if (!match) {
        throw new Error(`size "${size}" is not understood: use a number with an optional unit, e.g. "512MB", "20GB", "1TB"`);
    }
    const bytes = Math.floor(Number(match[1]) * BYTES_PER_UNIT[match[2].toLowerCase()]);
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`size "${size}" must be more than 0 bytes`);
    return bytes;
}

export interface BuilderGcSettings {
    /** Upper bound of the builder's whole cache, e.g. "20GB". */
    keepStorage: string | number;
    /**
     * Bound for cheap-to-recreate records (build contexts sent from the client, git checkouts) that
     * have not been used for `reproducibleKeepSeconds`. Defaults to the smaller of 512 MiB and keepStorage.
     * Cache mounts (npm's cache) are deliberately not in this group: they are what makes a
     * dependency change fast, and they live only on the builder.
     */
    reproducibleKeepStorage?: string | number;
    /** Defaults to 48 hours. */
    reproducibleKeepSeconds?: number;
    /** Anything unused for this long is removed even under the bound. Defaults to 30 days. */
    unusedKeepSeconds?: number;
    /** Parallel build steps; omitted means buildkitd's default (number of CPUs). */
    maxParallelism?: number;
}

const HOUR = 3600;
const DAY = 24 * HOUR;

function positiveWholeNumber(name: string, value: number): number {
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number, got ${value}`);
    return value;
}

/** The buildkitd.toml text for `docker buildx create --config`. Deterministic for equal input. */
export function renderBuildkitdToml(settings: BuilderGcSettings): string {
    const keepBytes = parseByteSize(settings.keepStorage);
    const reproducibleBytes = settings.reproducibleKeepStorage === undefined
        ? Math.min(512 * 1024 ** 2, keepBytes)
        : parseByteSize(settings.reproducibleKeepStorage);
    if (reproducibleBytes > keepBytes) {
        throw new Error(`reproducibleKeepStorage (${reproducibleBytes} bytes) must not exceed keepStorage (${keepBytes} bytes)`);
    }
    const reproducibleSeconds = positiveWholeNumber("reproducibleKeepSeconds", settings.reproducibleKeepSeconds ?? 48 * HOUR);
    const unusedSeconds = positiveWholeNumber("unusedKeepSeconds", settings.unusedKeepSeconds ?? 30 * DAY);

    const lines = [
        "# Rendered by medusa-deploy (lib/buildkitdToml.ts). Bounds this builder's cache.",
        "[worker.oci]",
        "  gc = true",
        `  gckeepstorage = ${keepBytes}`,
    ];
    if (settings.maxParallelism !== undefined) {
        lines.push(`  max-parallelism = ${positiveWholeNumber("maxParallelism", settings.maxParallelism)}`);
    }
    lines.push(
        "",
        "  # Build contexts and git checkouts are cheap to send again: drop them first.",
        "  [[worker.oci.gcpolicy]]",
        '    filters = ["type==source.local", "type==source.git.checkout"]',
        `    keepDuration = ${reproducibleSeconds}`,
        `    keepBytes = ${reproducibleBytes}`,
        "",
        "  # Then anything not used for a long time.",
        "  [[worker.oci.gcpolicy]]",
        `    keepDuration = ${unusedSeconds}`,
        `    keepBytes = ${keepBytes}`,
        "",
        "  # Then least recently used records until the whole cache fits the bound.",
        "  [[worker.oci.gcpolicy]]",
        "    all = true",
        `    keepBytes = ${keepBytes}`,
        "",
    );
    return lines.join("\n");
}
