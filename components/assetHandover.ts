// AssetHandover: runs host/edge-assets.sh right before the traffic switch, so the edge keeps sending
// requests for the admin chunks only the other colour's release has to that colour (an admin tab
// opened on it keeps working after the switch); everything else goes to the live colour.
import * as pulumi from "@pulumi/pulumi";
import { Colour } from "../lib/colour";
import { ADMIN_ASSETS } from "../lib/edgeControls";
import { DockerHost } from "./dockerHost";
import { Edge } from "./edge";

export interface AssetHandoverArgs {
    target: Colour;
    host: DockerHost;
    edge: Edge;
    /** Each colour's server container name. */
    servers: Record<Colour, string>;
    /** The map is a function of both colours' files: a new container on either side means a new map. */
    serverIds: pulumi.Input<string>[];
    dependsOn: pulumi.Resource[];
}

/** The script's report: how many chunks stay on the other colour, or why the map is unchanged. */
export function parseAssetReport(stdout: string): { kept: number } | { unchanged: string } {
    const line = stdout.trim().split("\n").pop() ?? "";
    const kept = /^assets: ([0-9]+) kept on (blue|green)$/.exec(line);
    if (kept) return { kept: Number(kept[1]) };
    const unchanged = /^assets: unchanged \((.*)\)$/.exec(line);
    if (unchanged) return { unchanged: unchanged[1] };
    throw new Error(`edge-assets did not report (last line: ${JSON.stringify(line)})`);
}

export class AssetHandover extends pulumi.ComponentResource {
    /** The command the switch waits for. */
    readonly done: pulumi.Resource;

    constructor(name: string, args: AssetHandoverArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:AssetHandover", name, {}, opts);
        const run = args.host.runScript(
            "edge-assets",
            {
                script: "edge-assets",
                env: {
                    EDGE_ADMIN_SOCKET: args.edge.adminSocket,
                    EDGE_DIR: args.edge.configDir,
                    EDGE_DIR_IN_EDGE: args.edge.configDirInEdge,
                    EDGE_CONTROL_DIR: args.edge.controlDir,
                    TARGET_COLOUR: args.target,
                    SERVER_BLUE: args.servers.blue,
                    SERVER_GREEN: args.servers.green,
                    ASSET_FOLDER: ADMIN_ASSETS.folder,
                    ASSET_URL_PREFIX: ADMIN_ASSETS.urlPrefix,
                },
                triggers: [args.target, ...args.serverIds],
                privileged: true,
            },
            { parent: this, dependsOn: [args.edge, ...args.dependsOn] },
        );
        // A map the edge did not take is no reason to hold a healthy release back; it is said, though.
        run.stdout.apply((stdout) => {
            const report = parseAssetReport(stdout);
            if ("unchanged" in report) pulumi.log.warn(`admin asset routing unchanged: ${report.unchanged}; admin tabs opened on the previous release may need a reload`, this);
        });
        this.done = run;
        this.registerOutputs({});
    }
}
