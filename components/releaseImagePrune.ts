// ReleaseImagePrune: release images are pulled with keepLocally, so that the idle colour can take
// traffic back at once, and the docker provider never removes them. Once a deploy has moved traffic
// and handed the worker over, this removes every other local image of the release repository that
// no container uses (host/prune-release-images.sh), so the host keeps two release images (the
// colours'), not one per release ever deployed. Housekeeping only: a failure to remove an image is
// reported, never a failed deploy; an image to keep that is missing refuses the whole prune.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Colour, COLOURS } from "../lib/colour";
import { pruneReleaseImagesEnv } from "../lib/releaseImagePrune";
import { ReleasePlan } from "../lib/releasePlan";
import { BlueGreen } from "./blueGreen";
import { DockerHost } from "./dockerHost";

export interface ReleaseImagePruneArgs {
    host: DockerHost;
    plan: ReleasePlan;
    /**
     * The deployment whose colours' images are kept. The prune waits for all of it (the traffic
     * switch, the worker handover, the live worker): depending on a component waits for its children.
     */
    deployment: BlueGreen;
}

export class ReleaseImagePrune extends pulumi.ComponentResource {
    readonly command: command.local.Command | command.remote.Command;

    constructor(name: string, args: ReleaseImagePruneArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:ReleaseImagePrune", name, {}, opts);
        const { deployment } = args;
        // The colours' images as the switch records them: known only once traffic has moved.
        const images = pulumi
            .all(COLOURS.map((colour) => deployment.deployed[colour]))
            .apply((deployed) => Object.fromEntries(COLOURS.flatMap((colour, i) => (deployed[i] ? [[colour, deployed[i].image]] : []))) as Partial<Record<Colour, string>>);
        const env = pulumi.all([deployment.live, images]).apply(([live, kept]) => pruneReleaseImagesEnv({ live, images: kept }));

        this.command = args.host.runScript(
            "prune-release-images",
            {
                script: "prune-release-images",
                env: { IMAGE_REPOSITORY: env.IMAGE_REPOSITORY, KEEP_IMAGES: env.KEEP_IMAGES },
                // A new image on either colour, or traffic on the other one, runs the prune again.
                triggers: [env.IMAGE_REPOSITORY, env.KEEP_IMAGES, deployment.live],
            },
            {
                parent: this,
                dependsOn: [deployment],
                // An unchanged plan changes nothing on the host, the prune included (preview shows nothing).
                ignoreChanges: args.plan.kind === "unchanged" ? ["create", "triggers", "connection"] : [],
            },
        );
        this.registerOutputs({});
    }
}
