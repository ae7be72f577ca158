// daemon.json settings the tests' own dockerds need on a machine that cannot grant every capability
// (see runc-bounded-caps.sh). Empty on an ordinary host, so tests run the stock runtime there.
import * as fs from "node:fs";
import * as path from "node:path";

/** CAP_LAST_CAP of the kernels we run on is 40 (CAP_CHECKPOINT_RESTORE). */
const ALL_KNOWN_CAPS = (1n << 41n) - 1n;

export function boundingSetIsComplete(status = fs.readFileSync("/proc/self/status", "utf8")): boolean {
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && (BigInt(`0x${hex}`) & ALL_KNOWN_CAPS) === ALL_KNOWN_CAPS;
}

export function sandboxRuntimeSettings(): Record<string, unknown> {
    if (boundingSetIsComplete()) return {};
    return {
        runtimes: { "bounded-caps": { path: path.join(__dirname, "runc-bounded-caps.sh") } },
        "default-runtime": "bounded-caps",
    };
}
