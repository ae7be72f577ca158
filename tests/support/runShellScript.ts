// Runs a host script with /bin/sh (dash here) the way the tests need it: asynchronously (a
// synchronous spawn would stop Node from reaping daemons the test started), with optional stdin,
// collecting its output, and killed if it hangs.
import { spawn } from "node:child_process";

export interface ScriptRun {
    status: number | null;
    stdout: string;
    stderr: string;
    /** Wall time of the run. */
    ms: number;
}

export interface ScriptRunOptions {
    env: NodeJS.ProcessEnv;
    /** The script's arguments ($1 ...). */
    args?: string[];
    /** Written to the script's stdin, then closed; without it stdin is /dev/null. */
    input?: string;
    /** SIGKILL after this long. @default 120000 */
    timeoutMs?: number;
    /** SIGTERM after this long, to test the script's own interruption handling. */
    terminateAfterMs?: number;
    /** SIGTERM `afterMs` after the script's stdout first matches `stdout` (a stage it reached, however loaded the machine). */
    terminateWhen?: { stdout: RegExp; afterMs: number };
    onStart?: (pid: number) => void;
}

export function runShellScript(script: string, options: ScriptRunOptions): Promise<ScriptRun> {
    return new Promise((resolve, reject) => {
        const started = Date.now();
        const child = spawn("/bin/sh", [script, ...(options.args ?? [])], { env: options.env, stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let signalled: NodeJS.Timeout | undefined;
        child.stdout?.on("data", (chunk: Buffer) => {
            stdout += chunk.toString();
            const when = options.terminateWhen;
            if (when && !signalled && when.stdout.test(stdout)) signalled = setTimeout(() => child.kill("SIGTERM"), when.afterMs);
        });
        child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        const kill = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120000);
        const terminate = options.terminateAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGTERM"), options.terminateAfterMs);
        child.on("error", reject);
        child.on("close", (status) => {
            clearTimeout(kill);
            if (terminate) clearTimeout(terminate);
            if (signalled) clearTimeout(signalled);
            resolve({ status, stdout, stderr, ms: Date.now() - started });
        });
        if (options.input !== undefined) {
            // The script may exit before reading stdin (bad input): that is not the test's error.
            child.stdin?.on("error", () => undefined);
            child.stdin?.end(options.input);
        }
        if (child.pid !== undefined) options.onStart?.(child.pid);
    });
}
