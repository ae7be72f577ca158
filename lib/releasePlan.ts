// The release planner of DESIGN.md section 2: from what the stack ran last time and the release asked
// for now, decide which colour runs which release and which colour takes traffic. Pure, so every row
// of the table is tested without Pulumi.
import { Colour, otherColour } from "./colour";

/** What one colour ran at the end of the previous deploy (from the stack's own outputs). */
export interface DeployedColour {
    release: string;
    /** Image reference pinned by digest, e.g. registry/app@sha256:… */
    image: string;
    /** Where the image came from ("built", or the stack it was promoted from). */
    source?: string;
}

/** The previous deploy of this stack, or undefined on the first deploy. */
export interface PreviousState {
    live: Colour;
    colours: Partial<Record<Colour, DeployedColour>>;
}

export type PlanKind =
    /** Nothing was deployed before: blue gets the release and goes live. */
    | "first-deploy"
    /** The live colour already runs the release: nothing changes. */
    | "unchanged"
    /** The idle colour still runs the release: traffic moves back to it, nothing is rebuilt. */
    | "switch-back"
    /** Neither colour runs the release: the idle colour is replaced with it, then goes live. */
    | "deploy-idle"
    /**
     * Manual promotion (promotion: manual): neither colour runs the release; the idle colour is
     * replaced with it, migrated and gated, and traffic stays where it is until `npm run switch`.
     */
    | "stage-idle";

/** Set to 1 for the one `pulumi up` that moves traffic to a staged colour (what `npm run switch` runs). */
export const SWITCH_VARIABLE = "MEDUSA_DEPLOY_SWITCH";

/** How a deploy moves traffic: automatically once the new colour is healthy, or on the operator's word. */
export interface PromotionChoice {
    /** "manual": a new release is staged on the idle colour; traffic moves only with `switchNow`. */
    promotion: "auto" | "manual";
    /** This run is `npm run switch`: move traffic to the staged colour, and do nothing else. */
    switchNow: boolean;
}

/** Where a colour's image comes from in this deploy. */
export type PlannedColour =
    | { release: string; image: { kind: "previous"; ref: string; source?: string } }
    | { release: string; image: { kind: "new" } };

export interface ReleasePlan {
    kind: PlanKind;
    /** The colour that serves traffic once the deploy succeeds. */
    live: Colour;
    /** The colour that served traffic before, if any. */
    previousLive?: Colour;
    /** The colour whose containers this deploy (re)creates, if any. Never the previously live one. */
    replaced?: Colour;
    /** What each colour runs after the deploy. A colour absent here has never been deployed. */
    colours: Partial<Record<Colour, PlannedColour>>;
    /** The release one `pulumi config set release … && pulumi up` away (the idle colour's). */
    rollbackRelease?: string;
    /** Manual promotion: the colour that runs the wanted release, healthy, waiting for `npm run switch`. */
    awaitingSwitch?: Colour;
}

function kept(deployed: DeployedColour): PlannedColour {
    const image = deployed.source === undefined ? { kind: "previous" as const, ref: deployed.image } : { kind: "previous" as const, ref: deployed.image, source: deployed.source };
    return { release: deployed.release, image };
}

function keptColours(previous: PreviousState): Partial<Record<Colour, PlannedColour>> {
    const colours: Partial<Record<Colour, PlannedColour>> = {};
    for (const colour of ["blue", "green"] as const) {
        const deployed = previous.colours[colour];
        if (deployed) colours[colour] = kept(deployed);
    }
    return colours;
}

export function planRelease(previous: PreviousState | undefined, desiredRelease: string, choice: PromotionChoice = { promotion: "auto", switchNow: false }): ReleasePlan {
    const plan = planAutomatic(previous, desiredRelease);
    if (choice.switchNow) {
        // The switch moves traffic to what was staged and nothing else: it never builds or replaces.
        if (plan.kind !== "switch-back") {
            const why = plan.kind === "unchanged" ? `${plan.live} already serves ${desiredRelease}` : plan.kind === "first-deploy" ? "nothing was deployed yet" : `neither colour runs release ${desiredRelease}`;
            throw new Error(`${SWITCH_VARIABLE}=1 (npm run switch) moves traffic to the colour staged with the stack's release, but ${why}: run \`pulumi up\` to stage it first; nothing was changed`);
        }
        return plan;
    }
    if (choice.promotion === "auto" || previous === undefined) return plan;
    if (plan.kind === "switch-back") {
        // Staged before and still waiting: declared exactly as the staging deploy declared it.
        return { kind: "unchanged", live: previous.live, previousLive: previous.live, colours: plan.colours, awaitingSwitch: plan.live };
    }
    if (plan.kind === "deploy-idle") {
        return { kind: "stage-idle", live: previous.live, previousLive: previous.live, replaced: plan.replaced, colours: plan.colours, awaitingSwitch: plan.replaced };
    }
    return plan;
}

function planAutomatic(previous: PreviousState | undefined, desiredRelease: string): ReleasePlan {
    if (desiredRelease.trim() === "") throw new Error("planRelease: the desired release is empty");

    if (previous === undefined) {
        return {
            kind: "first-deploy",
            live: "blue",
            replaced: "blue",
            colours: { blue: { release: desiredRelease, image: { kind: "new" } } },
        };
    }

    const live = previous.live;
    const idle = otherColour(live);
    const colours = keptColours(previous);

    if (previous.colours[live]?.release === desiredRelease) {
        return {
            kind: "unchanged",
            live,
            previousLive: live,
            colours,
            rollbackRelease: previous.colours[idle]?.release,
        };
    }

    if (previous.colours[idle]?.release === desiredRelease) {
        return {
            kind: "switch-back",
            live: idle,
            previousLive: live,
            colours,
            rollbackRelease: previous.colours[live]?.release,
        };
    }

    colours[idle] = { release: desiredRelease, image: { kind: "new" } };
    return {
        kind: "deploy-idle",
        live: idle,
        previousLive: live,
        replaced: idle,
        colours,
        rollbackRelease: previous.colours[live]?.release,
    };
}

/** One line for logs and `pulumi preview` output. */
export function describePlan(plan: ReleasePlan): string {
    const runs = (["blue", "green"] as const)
        .map((c) => `${c}=${plan.colours[c]?.release ?? "(none)"}`)
        .join(", ");
    switch (plan.kind) {
        case "first-deploy":
            return `first deploy: blue runs ${plan.colours.blue?.release} and goes live`;
        case "unchanged":
            if (plan.awaitingSwitch) return `unchanged: ${plan.awaitingSwitch} runs ${plan.colours[plan.awaitingSwitch]?.release}, waiting for npm run switch; ${plan.live} serves (${runs})`;
            return `unchanged: ${plan.live} already serves ${plan.colours[plan.live]?.release} (${runs})`;
        case "switch-back":
            return `switch back: traffic moves ${plan.previousLive} -> ${plan.live}, nothing rebuilt (${runs})`;
        case "deploy-idle":
            return `deploy: ${plan.replaced} is replaced with ${plan.colours[plan.live]?.release}, then traffic moves ${plan.previousLive} -> ${plan.live} (${runs})`;
        case "stage-idle":
            return `stage: ${plan.replaced} is replaced with ${plan.replaced ? plan.colours[plan.replaced]?.release : "-"} and gated; traffic stays on ${plan.live} until npm run switch (${runs})`;
    }
}
