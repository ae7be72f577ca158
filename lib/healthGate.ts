// The health gate of a colour's server (host/health-gate.sh): its inputs, validated, and how long
// Pulumi lets the command run. Pure, so it is tested without Pulumi.

/** Lines of the server's log quoted when the gate fails. */
export const GATE_LOG_LINES = 40;

export interface HealthGateInputs {
    /** The server container's name. @example "medusa-prod-green-server" */
    container: string;
    /** Seconds the server may take to become healthy (the stack's healthTimeoutSeconds). */
    timeoutSeconds: number;
    /** @default GATE_LOG_LINES */
    logLines?: number;
}

/** The plain environment of host/health-gate.sh (the container's id is added by the caller). */
export function healthGateEnv(inputs: HealthGateInputs): Record<"GATE_CONTAINER" | "GATE_TIMEOUT" | "GATE_LOG_LINES", string> {
    const wrong = (what: string, value: unknown, expected: string): never => {
        throw new Error(`health gate: ${what} ${JSON.stringify(value)} is invalid: expected ${expected}`);
    };
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(inputs.container)) wrong("container", inputs.container, "a container name");
    if (!Number.isInteger(inputs.timeoutSeconds) || inputs.timeoutSeconds < 1 || inputs.timeoutSeconds > 86400) {
        wrong("timeoutSeconds", inputs.timeoutSeconds, "a whole number of seconds from 1 to 86400");
    }
    const logLines = inputs.logLines ?? GATE_LOG_LINES;
    if (!Number.isInteger(logLines) || logLines < 1 || logLines > 1000) wrong("logLines", logLines, "a whole number of lines from 1 to 1000");
    return { GATE_CONTAINER: inputs.container, GATE_TIMEOUT: String(inputs.timeoutSeconds), GATE_LOG_LINES: String(logLines) };
}

/**
 * Pulumi's limit for the gate command: the script's own timeout plus room for the log it quotes and
 * an ssh connection, so the script, not Pulumi, is what reports a slow server.
 */
export function healthGateCommandTimeout(timeoutSeconds: number): string {
    return `${Math.ceil(timeoutSeconds / 60) + 5}m`;
}
