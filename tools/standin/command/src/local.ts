// command:local:Command's run: `/bin/sh -c <command>` in `dir` (else the provider's working
// directory, which the engine sets to the project folder), with the provider's environment plus
// `environment`, plus the previous run's output as PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR.
import * as fs from "node:fs";
import { goExitText, Logging, runProcess, trimOutput } from "./run";
import { goQuote, Props, reveal } from "./values";

export interface Outputs {
    stdout: string;
    stderr: string;
}

export interface RunContext {
    logLine: (line: string) => void;
    redact: (text: string) => string;
}

/** Previous stdout/stderr as environment variables, set only when non-empty (as the real one does). */
export function previousOutputEnv(inputs: Props, previous: Outputs | undefined): Record<string, string> {
    const env: Record<string, string> = {};
    if (!previous || reveal(inputs.addPreviousOutputInEnv) === false) return env;
    if (previous.stdout) env.PULUMI_COMMAND_STDOUT = previous.stdout;
    if (previous.stderr) env.PULUMI_COMMAND_STDERR = previous.stderr;
    return env;
}

export async function runLocal(command: string, inputs: Props, previous: Outputs | undefined, context: RunContext): Promise<Outputs> {
    const plain = reveal(inputs) as Props;
    const dir = typeof plain.dir === "string" ? plain.dir : process.cwd();
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
        throw new Error(context.redact(`chdir ${dir}: no such file or directory: running ${goQuote(command)}:\n`));
    }
    const result = await runProcess("/bin/sh", ["-c", command], {
        cwd: dir,
        env: { ...process.env, ...((plain.environment as Record<string, string> | undefined) ?? {}), ...previousOutputEnv(inputs, previous) },
        stdin: typeof plain.stdin === "string" ? plain.stdin : undefined,
        logging: plain.logging as Logging | undefined,
        logLine: context.logLine,
    });
    if (result.startError) throw new Error(context.redact(`${result.startError.message}: running ${goQuote(command)}:\n`));
    if (result.code !== 0) throw new Error(context.redact(`${goExitText(result)}: running ${goQuote(command)}:\n${result.combined}`));
    return { stdout: trimOutput(result.stdout), stderr: trimOutput(result.stderr) };
}
