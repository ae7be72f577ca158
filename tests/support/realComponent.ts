// Tests that need a real program (dockerd, haproxy, a registry) must fail under CI and may skip on a
// laptop that lacks it. Every host test asks here instead of deciding for itself.
import { execFileSync } from "node:child_process";
import type { Context } from "mocha";

export const runningInCi = (): boolean => Boolean(process.env.CI);

export function commandExists(command: string): boolean {
    try {
        execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

export function isRoot(): boolean {
    return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * Call from a `before` hook. Skips the suite with a clear message when a requirement is missing,
 * unless CI is set, in which case the missing requirement fails the suite.
 */
export function requireReal(ctx: Context, what: string, available: boolean, howToGet: string): void {
    if (available) return;
    const message = `${what} is not available: ${howToGet}`;
    if (runningInCi()) throw new Error(`CI is set, so this cannot be skipped. ${message}`);
    console.warn(`      skipped: ${message}`);
    ctx.skip();
}

export function requireCommands(ctx: Context, commands: string[], howToGet: string): void {
    const missing = commands.filter((c) => !commandExists(c));
    requireReal(ctx, missing.join(", "), missing.length === 0, howToGet);
}
