// Maintenance mode at the edge, switched through HAProxy's runtime API (no reload):
//
//   npm run maintenance -- --stack <stack> page|hold|off|show [--hold <seconds>]
//
// page: every public request gets the 503 maintenance page with Retry-After; hold: new requests wait
// (up to --hold seconds, default 30, at most 120) and go on to the live colour as soon as it is off.
// Requests carrying the operator's preview cookie (npm run edge-preview) are never held.
import * as path from "node:path";
import { hostNames } from "../lib/hostNames";
import { edgeControlEnv, onHost, readStack, script } from "./stackHost";

const USAGE = "usage: npm run maintenance -- --stack <stack> page|hold|off|show [--hold <seconds>]";

export function parseMaintenanceArguments(argv: string[]): { stack: string; mode: string; holdSeconds: string; cwd: string } {
    let stack: string | undefined;
    let mode: string | undefined;
    let holdSeconds = "30";
    let cwd = path.join(__dirname, "..");
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if ((arg === "--stack" || arg === "--hold" || arg === "--cwd") && argv[i + 1] !== undefined) {
            const value = argv[++i];
            if (arg === "--stack") stack = value;
            else if (arg === "--hold") holdSeconds = value;
            else cwd = path.resolve(value);
        } else if (["page", "hold", "off", "show"].includes(arg) && mode === undefined) mode = arg;
        else throw new Error(`unknown or incomplete argument ${JSON.stringify(arg)}; ${USAGE}`);
    }
    if (!stack) throw new Error(`--stack is required; ${USAGE}`);
    if (!mode) throw new Error(`say page, hold, off or show; ${USAGE}`);
    if (!/^[0-9]+$/.test(holdSeconds) || Number(holdSeconds) < 1 || Number(holdSeconds) > 120) throw new Error(`--hold must be 1-120 seconds, got ${JSON.stringify(holdSeconds)}`);
    return { stack, mode, holdSeconds, cwd };
}

async function main(): Promise<void> {
    const args = parseMaintenanceArguments(process.argv.slice(2));
    const { config } = await readStack(args.stack, args.cwd);
    const env = {
        ...edgeControlEnv(hostNames(config.stack, config.hostStateDir)),
        MODE: args.mode,
        HOLD_SECONDS: args.holdSeconds,
    };
    const run = await onHost(config, script(config, "edge-maintenance", env, true));
    process.exitCode = run.status;
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`maintenance: ${error.message}`);
        process.exitCode = 2;
    });
}
