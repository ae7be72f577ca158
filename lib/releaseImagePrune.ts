// What host/prune-release-images.sh is told after a deploy: the release image repository and the
// images to keep (each colour's image). Pure, so it is tested without Pulumi. The repository comes
// from the kept references themselves, not from the build settings: a promoting stack runs images of
// the source stack's repository.
import { Colour, COLOURS } from "./colour";

export interface KeptColourImages {
    /** The colour that serves traffic after this deploy: the prune targets its image's repository. */
    live: Colour;
    /** Each deployed colour's digest-pinned image reference. */
    images: Partial<Record<Colour, string>>;
}

const REFERENCE = /^[a-z0-9][a-zA-Z0-9._:/@+-]*$/;

/**
 * The repository of an image reference: without its digest and its tag (a ':' after the last '/').
 * @example repositoryOf("registry.example.com:5000/shop/medusa:A@sha256:…") === "registry.example.com:5000/shop/medusa"
 */
export function repositoryOf(reference: string): string {
    const name = reference.split("@")[0];
    const slash = name.lastIndexOf("/");
    const colon = name.lastIndexOf(":");
    return colon > slash ? name.slice(0, colon) : name;
}

/** The environment of host/prune-release-images.sh; throws on anything it would refuse. */
export function pruneReleaseImagesEnv(kept: KeptColourImages): Record<"IMAGE_REPOSITORY" | "KEEP_IMAGES", string> {
    const live = kept.images[kept.live];
    if (live === undefined) throw new Error(`release image prune: the live colour ${kept.live} has no image to keep`);
    const images = [live, ...COLOURS.filter((c) => c !== kept.live).flatMap((c) => kept.images[c] ?? [])];
    for (const image of images) {
        if (!REFERENCE.test(image) || !image.includes("@")) {
            throw new Error(`release image prune: ${JSON.stringify(image)} is not a digest-pinned image reference (repository[:tag]@sha256:…)`);
        }
    }
    return { IMAGE_REPOSITORY: repositoryOf(live), KEEP_IMAGES: [...new Set(images)].join(" ") };
}
