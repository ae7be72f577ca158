// Which image a promoting stack (prod) deploys: the one its source stack (staging) serves live, or
// the one of a pinned release that the source stack still has on one of its colours.
import { PreviousState } from "./releasePlan";

export interface PromotedImage {
    release: string;
    /** Digest-pinned reference, exactly as the source stack runs it. */
    image: string;
    fromStack: string;
}

export class PromotionError extends Error {}

/**
 * @param requested `auto` (the source's live release) or a release name.
 */
export function resolvePromotion(fromStack: string, source: PreviousState | undefined, requested: string): PromotedImage {
    if (source === undefined) {
        throw new PromotionError(
            `promoteFrom: stack "${fromStack}" has no deployed release to promote (its outputs are empty). Deploy it first: pulumi up --stack ${fromStack.split("/").pop()}`,
        );
    }
    if (requested === "auto") {
        const live = source.colours[source.live];
        if (!live) throw new PromotionError(`promoteFrom: stack "${fromStack}" records no release for its live colour ${source.live}`);
        return { release: live.release, image: live.image, fromStack };
    }
    for (const colour of [source.live, source.live === "blue" ? "green" : "blue"] as const) {
        const deployed = source.colours[colour];
        if (deployed?.release === requested) return { release: deployed.release, image: deployed.image, fromStack };
    }
    const has = (["blue", "green"] as const)
        .filter((c) => source.colours[c])
        .map((c) => `${source.colours[c]?.release} (${c}${c === source.live ? ", live" : ""})`);
    throw new PromotionError(
        `release "${requested}" is not on stack "${fromStack}", which has ${has.join(" and ")}. ` +
            `Deploy it to ${fromStack} first, or set release to one of those (or auto for the live one).`,
    );
}
