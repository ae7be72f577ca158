// The build a stack's state holds: the release its image resources were last built for, recorded in
// the stack output `build`. A deploy that builds nothing (the same release again, a rollback)
// declares that build exactly as it stands in the state, so the engine neither rebuilds it nor drops
// it: `pulumi up` of an unchanged release reports no changes at all.
import { MalformedStateError, OUTPUT_NAMES } from "./previousState";

export interface RecordedBuild {
    /** The release the app image resource was built for (its tag). */
    release: string;
}

export function parseRecordedBuild(stack: string, raw: unknown): RecordedBuild | undefined {
    if (raw === undefined || raw === null) return undefined;
    const release = typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>).release : undefined;
    if (typeof release !== "string" || release === "") {
        throw new MalformedStateError(
            `stack "${stack}" output "${OUTPUT_NAMES.build}" must be {release: "<release>"}, got ${JSON.stringify(raw)}. ` +
                "It is written by medusa-deploy; restore it with `pulumi stack export`/`import` or remove it to build afresh.",
        );
    }
    return { release };
}

/** What a deploy declares of the image build: a new build of `release`, the recorded one kept as it is, or none. */
export type BuildDeclaration = { kind: "build"; release: string } | { kind: "keep"; release: string } | { kind: "none" };

export function planBuild(deploysNewImage: boolean, release: string, recorded: RecordedBuild | undefined): BuildDeclaration {
    if (deploysNewImage) return { kind: "build", release };
    return recorded ? { kind: "keep", release: recorded.release } : { kind: "none" };
}
