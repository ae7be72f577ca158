// An operator-only look at a colour through the real edge, before (or without) moving traffic:
//
//   npm run edge-preview -- --stack <stack> [--colour blue|green] [--rotate] [--off]
//
// Routes requests carrying the cookie medusa_preview=<token> to the idle colour (or the one named)
// and prints the token and how to use it. The token is 32 random bytes made and kept on the host
// (0600, in the edge-control folder); the edge holds only its sha256. --rotate makes a new token
// (the old one stops working at once); --off removes the route.
import * as path from "node:path";
import { PREVIEW_COOKIE } from "../lib/edgeControls";
import { hostNames } from "../lib/hostNames";
import { edgeControlEnv, onHost, readStack, script } from "./stackHost";

const USAGE = "usage: npm run edge-preview -- --stack <stack> [--colour blue|green] [--rotate] [--off]";

export function parsePreviewArguments(argv: string[]): { stack: string; colour: string; rotate: boolean; off: boolean; cwd: string } {
    let stack: string | undefined;
    let colour = "idle";
    let rotate = false;
    let off = false;
    let cwd = path.join(__dirname, "..");
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === "--rotate") rotate = true;
        else if (arg === "--off") off = true;
        else if ((arg === "--stack" || arg === "--colour" || arg === "--cwd") && argv[i + 1] !== undefined) {
            const value = argv[++i];
            if (arg === "--stack") stack = value;
            else if (arg === "--colour") colour = value;
            else cwd = path.resolve(value);
        } else throw new Error(`unknown or incomplete argument ${JSON.stringify(arg)}; ${USAGE}`);
    }
    if (!stack) throw new Error(`--stack is required; ${USAGE}`);
    if (!["idle", "blue", "green"].includes(colour)) throw new Error(`--colour must be blue or green, got ${JSON.stringify(colour)}`);
    return { stack, colour, rotate, off, cwd };
}

async function main(): Promise<void> {
    const args = parsePreviewArguments(process.argv.slice(2));
    const { config } = await readStack(args.stack, args.cwd);
    const env = {
        ...edgeControlEnv(hostNames(config.stack, config.hostStateDir)),
        ACTION: args.off ? "off" : "on",
        COLOUR: args.colour,
        ROTATE: args.rotate ? "1" : "0",
    };
    // The token is shown once, below, with how to use it: not echoed raw as it arrives.
    const run = await onHost(config, script(config, "edge-preview", env, true), undefined, { quiet: true });
    process.exitCode = run.status;
    if (run.status !== 0) return;
    const colour = /^preview: (\S+)$/m.exec(run.stdout)?.[1];
    const token = /^preview token: ([0-9a-f]{64})$/m.exec(run.stdout)?.[1];
    if (!token) {
        console.log(`preview: ${colour ?? "off"}`);
        return;
    }
    const url = config.edge.publicUrl.replace(/\/$/, "");
    console.log(`preview: requests with the cookie below reach ${colour} (responses say X-Medusa-Colour); everyone else is unaffected`);
    console.log(`  curl --cookie '${PREVIEW_COOKIE}=${token}' ${url}/health`);
    console.log(`  in a browser: open ${url}, then in the developer console: document.cookie = "${PREVIEW_COOKIE}=${token}; path=/"`);
    console.log("  npm run edge-preview -- --stack " + config.stack + " --off   (remove the route)   --rotate   (new token)");
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`edge-preview: ${error.message}`);
        process.exitCode = 2;
    });
}
