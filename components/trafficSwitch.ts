// TrafficSwitch: runs host/traffic-switch.sh once the target colour is healthy and migrated. It
// moves traffic through HAProxy's runtime API, persists it, verifies through the edge and restores
// the previous routing on failure, then watches the new colour under real traffic for a while and
// switches back to the previous colour if it fails. `live` is read from what the script printed, so
// the stack can only record a colour that actually serves.
import * as pulumi from "@pulumi/pulumi";
import { Colour, isColour } from "../lib/colour";
import { COLOUR_HEADER, EDGE_BACKEND_NAME } from "../lib/haproxyConfig";
import { DockerHost } from "./dockerHost";
import { Edge } from "./edge";

/** How long and how strictly the switch watches the new colour after moving traffic to it. */
export interface SwitchWatchArgs {
    /**
     * Seconds to watch HAProxy's counters of the new colour after the switch; 0 turns the watch off.
     * `pulumi up` waits this long. @default 30
     */
    seconds?: number;
    /**
     * Share of the new colour's requests that may fail (5xx, connection or response errors) before
     * traffic goes back to the previous colour, 0..1. @default 0.05 @example 0.02
     */
    maxErrorRate?: number;
    /** A rate is judged over at least this many requests: fewer say nothing. @default 20 */
    minRequests?: number;
}

/**
 * The one place the watch defaults live. host/traffic-switch.sh falls back to the same values when
 * run by hand (tests/host/trafficSwitch.test.ts checks they agree); the program always passes them.
 */
export const SWITCH_WATCH_DEFAULTS: Required<SwitchWatchArgs> = { seconds: 30, maxErrorRate: 0.05, minRequests: 20 };

export interface TrafficSwitchArgs {
    target: Colour;
    host: DockerHost;
    edge: Edge;
    /** Identity of the target's server container: a new container means a new switch. */
    targetServerId: pulumi.Input<string>;
    /** The target's health-gated server and its migration. */
    dependsOn: pulumi.Resource[];
    /** Post-switch watch; each field falls back to SWITCH_WATCH_DEFAULTS. */
    watch?: SwitchWatchArgs;
}

/** The script's WATCH_* environment for `watch`, validated, defaults filled in. */
export function switchWatchEnv(watch: SwitchWatchArgs = {}): Record<"WATCH_SECONDS" | "WATCH_MAX_ERROR_RATE" | "WATCH_MIN_REQUESTS", string> {
    const settings = { ...SWITCH_WATCH_DEFAULTS, ...definedOnly(watch) };
    const wrong = (field: string, value: unknown, expected: string): never => {
        throw new Error(`traffic switch: watch.${field} ${JSON.stringify(value)} is invalid: expected ${expected}`);
    };
    if (!Number.isInteger(settings.seconds) || settings.seconds < 0) wrong("seconds", settings.seconds, "a whole number of seconds, 0 to turn the watch off");
    if (!Number.isFinite(settings.maxErrorRate) || settings.maxErrorRate < 0 || settings.maxErrorRate > 1) {
        wrong("maxErrorRate", settings.maxErrorRate, "a share between 0 and 1, e.g. 0.05");
    }
    if (!Number.isInteger(settings.minRequests) || settings.minRequests < 1) wrong("minRequests", settings.minRequests, "a whole number of requests, at least 1");
    return {
        WATCH_SECONDS: String(settings.seconds),
        // Plain decimal notation: the script reads it with awk (String(1e-7) would be "1e-7").
        WATCH_MAX_ERROR_RATE: settings.maxErrorRate.toFixed(6).replace(/0+$/, "").replace(/\.$/, ""),
        WATCH_MIN_REQUESTS: String(settings.minRequests),
    };
}

function definedOnly<T extends object>(value: T): Partial<T> {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
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
                    // The lock install-edge-config.sh takes lives here too (edge.lock): a reload never
                    // lands between a switch and its save. The watch does not hold it (see the script).
                    EDGE_CONTROL_DIR: args.edge.controlDir,
                    EDGE_BACKEND: EDGE_BACKEND_NAME,
                    EDGE_COLOUR_HEADER: COLOUR_HEADER,
                    TARGET_COLOUR: args.target,
                    // Through the operator frontend: the public one does not say which colour answered.
                    VERIFY_UNIX_SOCKET: args.edge.operatorSocket,
                    VERIFY_URL: "http://edge/health",
                    VERIFY_TIMEOUT: "30",
                    ...switchWatchEnv(args.watch),
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
