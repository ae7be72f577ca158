// A container's log on the stack's host, local or over ssh:
//
//   npm run logs -- --stack <stack> [--role server|worker|edge|postgres|redis|daily-backup]
//                   [--colour blue|green] [--follow] [--tail N] [--cwd DIR]
//
// --role defaults to server, --colour to the live colour; --tail to 200 lines. The exit code is
// docker logs' own (2 when the stack cannot be read or the arguments are wrong).
import * as path from "node:path";
import { isColour } from "../lib/colour";
import { renderHostInvocation } from "../lib/hostInvocation";
import { hostNames } from "../lib/hostNames";
import { isLogRole, LOG_ROLES, logContainer, LogRole } from "../lib/logTarget";
import { Colour } from "../lib/colour";
import { onHost, readStack } from "./stackHost";

const USAGE = `usage: npm run logs -- --stack <stack> [--role ${LOG_ROLES.filter((r) => r !== "migration").join("|")}] [--colour blue|green] [--follow] [--tail N]`;

export interface LogsArguments {
    stack: string;
    role: LogRole;
    colour?: Colour;
    follow: boolean;
    tail: number;
    cwd: string;
}

export function parseLogsArguments(argv: string[]): LogsArguments {
    const values: Record<string, string> = {};
    let follow = false;
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === "--follow" || flag === "-f") follow = true;
        else if (["--stack", "--role", "--colour", "--tail", "--cwd"].includes(flag) && argv[i + 1] !== undefined) values[flag.slice(2)] = argv[++i];
        else throw new Error(`unknown or incomplete argument ${JSON.stringify(flag)}; ${USAGE}`);
    }
    if (!values.stack) throw new Error(`--stack is required; ${USAGE}`);
    const role = values.role ?? "server";
    if (!isLogRole(role)) throw new Error(`--role must be one of ${LOG_ROLES.join(", ")}, got ${JSON.stringify(role)}`);
    if (values.colour !== undefined && !isColour(values.colour)) throw new Error(`--colour must be blue or green, got ${JSON.stringify(values.colour)}`);
    const tail = values.tail === undefined ? 200 : Number(values.tail);
    if (!Number.isInteger(tail) || tail < 1) throw new Error(`--tail must be a whole number of lines >= 1, got ${JSON.stringify(values.tail)}`);
    return { stack: values.stack, role, colour: values.colour as Colour | undefined, follow, tail, cwd: path.resolve(values.cwd ?? path.join(__dirname, "..")) };
}

async function main(): Promise<void> {
    const args = parseLogsArguments(process.argv.slice(2));
    const { config, outputs } = await readStack(args.stack, args.cwd);
    const container = logContainer(hostNames(config.stack, config.hostStateDir), args.role, args.colour, outputs.live);
    const text = `exec docker logs --timestamps --tail "$TAIL" ${args.follow ? "--follow " : ""}"$CONTAINER" 2>&1`;
    const run = await onHost(config, renderHostInvocation({ script: text, name: "logs", env: { CONTAINER: container, TAIL: String(args.tail) }, sudo: false }), undefined, { discard: true });
    process.exitCode = run.status;
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`logs: ${error.message}`);
        process.exitCode = 2;
    });
}
