// The scripts under host/, read once. Components pass their text to the host (see
// lib/hostInvocation.ts) and hash it into triggers so a changed script runs again.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export type HostScriptName = "apply-daemon-json" | "ensure-buildkit-builder" | "install-edge-config" | "run-migration" | "traffic-switch";

const cache = new Map<HostScriptName, string>();

export function hostScript(name: HostScriptName): string {
    let text = cache.get(name);
    if (text === undefined) {
        text = fs.readFileSync(path.join(__dirname, "..", "host", `${name}.sh`), "utf8");
        cache.set(name, text);
    }
    return text;
}

export function contentHash(...parts: string[]): string {
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part).update("\0");
    return hash.digest("hex").slice(0, 16);
}
