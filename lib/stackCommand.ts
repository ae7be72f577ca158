// Arguments of tools/pulumi-stack.ts and where it finds the Pulumi CLI: pure, so they are tested
// without an engine.
import * as os from "os";
import * as path from "path";

export type StackAction = "preview" | "up" | "refresh" | "destroy";

export interface StackCommand {
    action: StackAction;
    stack: string;
    /** Project folder holding Pulumi.yaml and the stack files. @default "." */
    cwd: string;
    /** The program file, relative to cwd. @default "index.ts" */
    program: string;
    expectNoChanges: boolean;
    diff: boolean;
}

const actions: readonly StackAction[] = ["preview", "up", "refresh", "destroy"];
const usage = "usage: pulumi-stack <preview|up|refresh|destroy> --stack NAME [--cwd DIR] [--program FILE] [--diff] [--expect-no-changes]";

export function parseStackCommand(argv: readonly string[]): StackCommand {
    const [action, ...rest] = argv;
    if (!actions.includes(action as StackAction)) throw new Error(`unknown action '${action ?? ""}': ${usage}`);
    const command: StackCommand = { action: action as StackAction, stack: "", cwd: ".", program: "index.ts", expectNoChanges: false, diff: false };
    for (let i = 0; i < rest.length; i++) {
        const flag = rest[i];
        const value = () => {
            const next = rest[++i];
            if (next === undefined || next.startsWith("--")) throw new Error(`${flag} needs a value: ${usage}`);
            return next;
        };
        if (flag === "--stack" || flag === "-s") command.stack = value();
        else if (flag === "--cwd") command.cwd = value();
        else if (flag === "--program") command.program = value();
        else if (flag === "--expect-no-changes") command.expectNoChanges = true;
        else if (flag === "--diff") command.diff = true;
        else if (flag === "--yes" || flag === "-y") continue; // the Automation API never prompts
        else throw new Error(`unknown option '${flag}': ${usage}`);
    }
    if (!command.stack) throw new Error(`--stack is required: ${usage}`);
    return command;
}

/**
 * The folder whose bin/pulumi the Automation API runs: the version the npm `pulumi` launcher uses,
 * in the project's Pulumi home (tools/toolchain.sh installs it there).
 */
export function pulumiCliRoot(env: NodeJS.ProcessEnv, launcherVersion = readLauncherVersion()): string {
    const home = env.PULUMI_HOME || path.join(os.homedir(), ".pulumi");
    return path.join(home, "versions", launcherVersion);
}

function readLauncherVersion(): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("pulumi/package.json") as { version: string }).version;
}
