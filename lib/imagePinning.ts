// Images that run next to the shop's data (the edge, Postgres, Redis) must be pinned by digest
// outside a dev sandbox: a tag can be moved by whoever controls it, and the next pull on the host
// would then run their image with the shop's traffic or data. An operator who accepts that for an
// image says so by naming its setting in allowMutableImages.

/** Settings whose image runs on the host beside the shop's data. */
export const PINNED_IMAGE_SETTINGS = ["edgeImage", "postgresImage", "redisImage"] as const;
export type PinnedImageSetting = (typeof PINNED_IMAGE_SETTINGS)[number];

const DIGEST = /@sha256:[0-9a-f]{64}$/;

export function isDigestPinned(image: string): boolean {
    return DIGEST.test(image);
}

/** The setting names in allowMutableImages, or the names that are not image settings. */
export function parseAllowMutableImages(text: string): { settings: Set<PinnedImageSetting>; unknown: string[] } {
    const settings = new Set<PinnedImageSetting>();
    const unknown: string[] = [];
    for (const name of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
        if ((PINNED_IMAGE_SETTINGS as readonly string[]).includes(name)) settings.add(name as PinnedImageSetting);
        else unknown.push(name);
    }
    return { settings, unknown };
}

/** The message for an image setting that is a tag alone, with how to pin it. */
export function mutableImageProblem(setting: PinnedImageSetting, image: string, stack: string, unset: boolean): string {
    // Pulumi hands a project default over like a set value: "(the default)" when it equals it.
    return (
        `is required on stack "${stack}" as an image pinned by digest, and "${image}"${unset ? " (the default)" : ""} is a tag without one: whoever can move the tag decides what runs next to the shop's data at the next pull. ` +
        `Pin it as name:tag@sha256:<digest> (\`docker pull ${image} && docker inspect --format '{{index .RepoDigests 0}}' ${image}\` prints it; compare with the publisher's listing), ` +
        `or accept the moving tag by naming the setting: \`pulumi config set medusa-deploy:allowMutableImages ${setting}\``
    );
}
