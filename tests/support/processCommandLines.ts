// What every process on this machine was started with, for tests that check a secret never reaches a
// command line (which `ps` shows to every local user, container processes included).
import * as fs from "node:fs";

/** Every process's command line that contains `needle`. */
export function commandLinesContaining(needle: string): string[] {
    const found: string[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^[0-9]+$/.test(entry)) continue;
        try {
            const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
            if (argv.includes(needle)) found.push(`${entry}: ${argv}`);
        } catch {
            // the process ended meanwhile
        }
    }
    return found;
}
