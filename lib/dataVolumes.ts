// Which protected data volumes a deploy declares. A data volume is declared while its service runs
// here, and afterwards too: a protected resource that leaves the program makes the engine refuse its
// delete at the end of `pulumi up` (after traffic has moved), and the shop's data must outlive a
// switch to an external database anyway. Each deploy records the volumes in the stack output
// `dataVolumes`; the next one keeps declaring every one recorded, volume only.

export const DATA_VOLUMES = ["postgres-data", "redis-data", "registry-data"] as const;
export type DataVolume = (typeof DATA_VOLUMES)[number];

export class MalformedDataVolumesError extends Error {}

/** The recorded volumes, from the stack's `dataVolumes` output (absent on older deploys: none). */
export function parseRecordedVolumes(stack: string, raw: unknown): Set<DataVolume> {
    if (raw === undefined || raw === null) return new Set();
    if (!Array.isArray(raw) || !raw.every((v): v is DataVolume => (DATA_VOLUMES as readonly unknown[]).includes(v))) {
        throw new MalformedDataVolumesError(
            `stack "${stack}" output "dataVolumes" must be a list of ${DATA_VOLUMES.join(", ")}, got ${JSON.stringify(raw)}. ` +
                "Inspect it with `pulumi stack output --json`.",
        );
    }
    return new Set(raw);
}

export interface VolumePlan {
    /** Volumes whose service runs in this deploy. */
    inUse: ReadonlySet<DataVolume>;
    /** Volumes kept (declared, protected) although nothing uses them any more. */
    keptOnly: ReadonlySet<DataVolume>;
}

export function planDataVolumes(inUse: Iterable<DataVolume>, recorded: ReadonlySet<DataVolume>): VolumePlan {
    const used = new Set(inUse);
    return { inUse: used, keptOnly: new Set([...recorded].filter((v) => !used.has(v))) };
}

/** What the next deploy must keep declaring, in a stable order. */
export function recordedVolumes(plan: VolumePlan): DataVolume[] {
    return DATA_VOLUMES.filter((v) => plan.inUse.has(v) || plan.keptOnly.has(v));
}

/** The warning a deploy prints for each kept-only volume. */
export function keptVolumeNotice(volume: DataVolume, hostVolumeName: string): string {
    return (
        `data volume ${hostVolumeName} (${volume}) is no longer used by this stack but is kept, protected, with its data. ` +
        `To delete it on purpose: pulumi state unprotect <its URN>, remove it from the state (pulumi state delete <URN>), then docker volume rm ${hostVolumeName} on the host.`
    );
}
