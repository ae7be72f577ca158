// TrafficSwitch: runs host/traffic-switch.sh once the target colour is healthy and migrated. It
// moves traffic through HAProxy's runtime API, persists it, verifies through the edge and restores
// the previous routing on failure. `live` is read from what the script printed, so the stack can
// only record a colour that actually serves.
import * as pulumi from "@pulumi/pulumi";
import { Colour, isColour } from "../lib/colour";
import { COLOUR_HEADER, EDGE_BACKEND_NAME } from "../lib/haproxyConfig";
import { DockerHost } from "./dockerHost";
import { Edge } from "./edge";

export interface TrafficSwitchArgs {
    target: Colour;
    host: DockerHost;
    edge: Edge;
    /** Identity of the target's server container: a new container means a new switch. */
    targetServerId: pulumi.Input<string>;
    /** The target's health-gated server and its migration. */
    dependsOn: pulumi.Resource[];
}

export function parseLiveColour(stdout: string): Colour {
    const line = stdout.trim().split("\n").pop() ?? "";
    const colour = /^live: (\S+)$/.exec(line)?.[1];
    if (!isColour(colour)) throw new Error(`traffic switch did not report a live colour (last line: ${JSON.stringify(line)})`);
    return colour;
}

export class TrafficSwitch extends pulumi.ComponentResource {
    /** The colour serving traffic, as the switch verified it. */
    readonly live: pulumi.Output<Colour>;

    constructor(name: string, args: TrafficSwitchArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:TrafficSwitch", name, {}, opts);
        const run = args.host.runScript(
            "traffic-switch",
            {
                script: "traffic-switch",
                env: {
                    EDGE_ADMIN_SOCKET: args.edge.adminSocket,
                    EDGE_STATE_FILE: args.edge.stateFile,
                    EDGE_BACKEND: EDGE_BACKEND_NAME,
                    EDGE_COLOUR_HEADER: COLOUR_HEADER,
                    TARGET_COLOUR: args.target,
                    VERIFY_URL: args.edge.verifyUrl,
                    VERIFY_TIMEOUT: "30",
                    // The same lock install-edge-config.sh takes: a reload never lands between a
                    // switch and its save.
                    EDGE_LOCK_FILE: args.edge.lockFile,
                },
                triggers: [args.target, args.targetServerId],
                privileged: true,
            },
            { parent: this, dependsOn: [args.edge, ...args.dependsOn] },
        );
        this.live = run.stdout.apply(parseLiveColour);
        this.registerOutputs({ live: this.live });
    }
}
