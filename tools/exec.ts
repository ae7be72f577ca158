// A one-off command in the shop's release, on the stack's host, local or over ssh:
//
//   npm run exec -- --stack <stack> [--colour blue|green] [--cwd DIR] -- <command> [args...]
//
// The command runs in a fresh container of the colour's server (default: the live colour): the same
// image, environment (secrets included, piped from `docker inspect`, never on a command line), user
// and network, with no published port; the container is removed when the command ends. Our stdin,
// stdout and stderr are the command's (a terminal when ours is one), and its exit code is ours.
// The first admin user, for example, without a password on any command line:
//   npm run exec -- --stack prod -- npx medusa user --email owner@shop.example --invite
import * as path from "node:path";
import { Colour, isColour } from "../lib/colour";
import { hostNames } from "../lib/hostNames";
import { OUTPUT_NAMES } from "../lib/previousState";
import { onHostAttached, readStack, script } from "./stackHost";

const USAGE = "usage: npm run exec -- --stack <stack> [--colour blue|green] -- <command> [args...]";

export interface ExecArguments {
    stack: string;
    colour?: Colour;
    command: string[];
    cwd: string;
}

export function parseExecArguments(argv: string[]): ExecArguments {
    const separator = argv.indexOf("--");
    const options = separator === -1 ? argv : argv.slice(0, separator);
    const command = separator === -1 ? [] : argv.slice(separator + 1);
    const values: Record<string, string> = {};
    for (let i = 0; i < options.length; i += 2) {
        const flag = options[i];
        if (!["--stack", "--colour", "--cwd"].includes(flag) || options[i + 1] === undefined) throw new Error(`unknown or incomplete argument ${JSON.stringify(flag)}; ${USAGE}`);
        values[flag.slice(2)] = options[i + 1];
    }
    if (!values.stack) throw new Error(`--stack is required; ${USAGE}`);
    if (values.colour !== undefined && !isColour(values.colour)) throw new Error(`--colour must be blue or green, got ${JSON.stringify(values.colour)}`);
    if (command.length === 0) throw new Error(`say what to run after --, e.g. -- npx medusa user --email you@shop.example --invite; ${USAGE}`);
    return { stack: values.stack, colour: values.colour as Colour | undefined, command, cwd: path.resolve(values.cwd ?? path.join(__dirname, "..")) };
}

/** The colour to run in: the one named, else the live one the stack recorded. */
export function oneoffColour(named: Colour | undefined, live: unknown, stack: string): Colour {
    if (named !== undefined) return named;
    if (isColour(live)) return live;
    throw new Error(`stack ${stack} has no live colour recorded (has it been deployed?); name one with --colour; nothing ran`);
}

/** 2026-12-03T10:15:00.123Z -> 20261203T101500Z: a container-name-safe start time. */
export function oneoffStamp(now: Date): string {
    return now.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}

async function main(): Promise<void> {
    const args = parseExecArguments(process.argv.slice(2));
    const { config, outputs } = await readStack(args.stack, args.cwd);
    const colour = oneoffColour(args.colour, outputs[OUTPUT_NAMES.live], config.stack);
    const names = hostNames(config.stack, config.hostStateDir);
    const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const env = { ONEOFF_FROM: names.server(colour), ONEOFF_NAME: names.oneoff(colour, oneoffStamp(new Date())), ONEOFF_TTY: terminal ? "1" : "" };
    process.exitCode = await onHostAttached(config, script(config, "run-oneoff", env, false, args.command), terminal);
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`exec: ${error.message}`);
        process.exitCode = 2;
    });
}
