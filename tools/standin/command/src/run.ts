// Runs one process the way the real provider runs a command: stdout and stderr captured apart and
// together (the together copy only for error messages), lines streamed to the engine log when the
// `logging` input says so, stdin written when it is non-empty (else /dev/null).
import { ChildProcess, spawn } from "node:child_process";

export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";
export const loggingValues: readonly Logging[] = ["stdout", "stderr", "stdoutAndStderr", "none"];

/** Absent logging logs both streams, as in the real provider. */
export const logsStdout = (logging: Logging | undefined): boolean => logging === undefined || logging === "stdout" || logging === "stdoutAndStderr";
export const logsStderr = (logging: Logging | undefined): boolean => logging === undefined || logging === "stderr" || logging === "stdoutAndStderr";

export interface RunOptions {
    cwd?: string;
    env: NodeJS.ProcessEnv;
    stdin?: string;
    logging?: Logging;
    /** Receives each output line the logging setting lets through. */
    logLine: (line: string) => void;
    /** Asked before logging output; false holds the line back (ssh's own messages before it connects). */
    mayLog?: () => boolean;
}

export interface RunResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    /** stdout and stderr interleaved as they arrived. */
    combined: string;
    /** Set when the process could not be started at all. */
    startError?: Error;
}

const running = new Set<ChildProcess>();

/** Stops every running command (the engine's Cancel, e.g. on Ctrl-C). */
export function killAll(): void {
    for (const child of running) child.kill("SIGKILL");
}

export function runProcess(file: string, args: string[], options: RunOptions): Promise<RunResult> {
    return new Promise((resolve) => {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const both: Buffer[] = [];
        // One line splitter over both streams, like the real provider's single logging pipe.
        let pending = "";
        const feedLog = (chunk: Buffer) => {
            if (options.mayLog && !options.mayLog()) return;
            pending += chunk.toString("utf8");
            const lines = pending.split("\n");
            pending = lines.pop() ?? "";
            for (const line of lines) options.logLine(line.replace(/\r$/, ""));
        };
        const child = spawn(file, args, {
            cwd: options.cwd,
            env: options.env,
            stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
        });
        running.add(child);
        child.stdout?.on("data", (chunk: Buffer) => {
            out.push(chunk);
            both.push(chunk);
            if (logsStdout(options.logging)) feedLog(chunk);
        });
        child.stderr?.on("data", (chunk: Buffer) => {
            err.push(chunk);
            both.push(chunk);
            if (logsStderr(options.logging)) feedLog(chunk);
        });
        if (options.stdin && child.stdin) {
            // A command that does not read its stdin closes the pipe early: not an error.
            child.stdin.on("error", () => undefined);
            child.stdin.end(options.stdin);
        }
        let startError: Error | undefined;
        child.on("error", (error) => (startError = error));
        child.on("close", (code, signal) => {
            running.delete(child);
            if (pending) options.logLine(pending.replace(/\r$/, ""));
            resolve({
                code,
                signal,
                stdout: Buffer.concat(out).toString("utf8"),
                stderr: Buffer.concat(err).toString("utf8"),
                combined: Buffer.concat(both).toString("utf8"),
                startError,
            });
        });
    });
}

const signalNames: Partial<Record<NodeJS.Signals, string>> = {
    SIGKILL: "killed",
    SIGTERM: "terminated",
    SIGINT: "interrupt",
    SIGHUP: "hangup",
    SIGPIPE: "broken pipe",
    SIGSEGV: "segmentation fault",
    SIGABRT: "aborted",
    SIGQUIT: "quit",
};

/** Go's exec.ExitError text: "exit status 3", "signal: killed". */
export function goExitText(result: RunResult): string {
    if (result.signal) return `signal: ${signalNames[result.signal] ?? result.signal}`;
    return `exit status ${result.code}`;
}

/** The real provider drops one trailing newline from each captured stream. */
export const trimOutput = (text: string): string => (text.endsWith("\n") ? text.slice(0, -1) : text);
