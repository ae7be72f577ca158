// Reads what a stack recorded in its outputs (live colour and each colour's release and image) back
// into a PreviousState. Used on the stack's own outputs (release planning) and on the source stack of
// a promotion. Anything malformed is an error: treating it as a first deploy would redeploy blue over
// a colour that may be serving traffic.
import { Colour, isColour } from "./colour";
import { DeployedColour, PreviousState } from "./releasePlan";

/** Output names, shared by index.ts (which writes them) and this parser (which reads them). */
export const OUTPUT_NAMES = {
    live: "live",
    blue: "blue",
    green: "green",
    rollbackRelease: "rollbackRelease",
    awaitingSwitch: "awaitingSwitch",
    url: "url",
    dataVolumes: "dataVolumes",
    services: "services",
    build: "build",
    lastBackup: "lastBackup",
} as const;

const DIGEST_PINNED = /^[^\s@]+@sha256:[0-9a-f]{64}$/;

export class MalformedStateError extends Error {}

function parseDeployedColour(stack: string, colour: Colour, raw: unknown): DeployedColour | undefined {
    if (raw === undefined || raw === null) return undefined;
    const where = `stack "${stack}" output "${colour}"`;
    if (typeof raw !== "object" || Array.isArray(raw)) {
        throw new MalformedStateError(`${where} must be an object {release, image}, got ${JSON.stringify(raw)}`);
    }
    const { release, image, source } = raw as Record<string, unknown>;
    if (typeof release !== "string" || release === "") {
        throw new MalformedStateError(`${where}.release must be a non-empty string, got ${JSON.stringify(release)}`);
    }
    if (typeof image !== "string" || !DIGEST_PINNED.test(image)) {
        throw new MalformedStateError(
            `${where}.image must be an image pinned by digest (name@sha256:<64 hex>), got ${JSON.stringify(image)}`,
        );
    }
    if (source !== undefined && typeof source !== "string") {
        throw new MalformedStateError(`${where}.source must be a string, got ${JSON.stringify(source)}`);
    }
    return source === undefined ? { release, image } : { release, image, source };
}

/**
 * @param outputs the stack's outputs as plain values (secrets already unwrapped), or undefined when
 *   the stack has never been deployed.
 * @returns undefined when the stack has no deploy recorded (first deploy).
 */
export function parsePreviousState(stack: string, outputs: Record<string, unknown> | undefined): PreviousState | undefined {
    const recorded = outputs ?? {};
    const live = recorded[OUTPUT_NAMES.live];
    const blue = parseDeployedColour(stack, "blue", recorded[OUTPUT_NAMES.blue]);
    const green = parseDeployedColour(stack, "green", recorded[OUTPUT_NAMES.green]);

    if (live === undefined && blue === undefined && green === undefined) return undefined;

    const fix = "Inspect it with `pulumi stack output --json`; if the deploy record is lost, see the README's recovery runbook.";
    if (!isColour(live)) {
        throw new MalformedStateError(
            `stack "${stack}" output "live" must be "blue" or "green", got ${JSON.stringify(live)}. ${fix}`,
        );
    }
    const colours: Partial<Record<Colour, DeployedColour>> = {};
    if (blue) colours.blue = blue;
    if (green) colours.green = green;
    if (!colours[live]) {
        throw new MalformedStateError(`stack "${stack}" says ${live} is live but records no release for ${live}. ${fix}`);
    }
    return { live, colours };
}
