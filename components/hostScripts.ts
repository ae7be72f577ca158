// The scripts under host/, read once. A script sent to a host must stand alone, so the lines that
// source a shared file from host/lib when run from a checkout are replaced by that file's text.
// Components pass the result to the host (lib/hostInvocation.ts) and hash it into triggers, so a
// changed script runs again.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export type HostScriptName =
    | "apply-daemon-json"
    | "backup-database"
    | "daily-backup"
    | "prune-backups"
    | "restore-database"
    | "stack-status"
    | "edge-assets"
    | "edge-maintenance"
    | "edge-preview"
    | "ensure-buildkit-builder"
    | "health-gate"
    | "install-edge-config"
    | "preflight"
    | "prune-release-images"
    | "run-migration"
    | "run-oneoff"
    | "stop-worker"
    | "traffic-switch";

const HOST_DIR = path.join(__dirname, "..", "host");
const INLINE = /^.*# medusa-deploy:inline (lib\/[a-z-]+\.sh)$/gm;

const cache = new Map<HostScriptName, string>();

export function inlineHostLibraries(text: string, readLibrary: (relativePath: string) => string): string {
    return text.replace(INLINE, (_line, library: string) => readLibrary(library).trimEnd());
}

export function hostScript(name: HostScriptName): string {
    let text = cache.get(name);
    if (text === undefined) {
        const source = fs.readFileSync(path.join(HOST_DIR, `${name}.sh`), "utf8");
        text = inlineHostLibraries(source, (library) => fs.readFileSync(path.join(HOST_DIR, library), "utf8"));
        cache.set(name, text);
    }
    return text;
}

export function contentHash(...parts: string[]): string {
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part).update("\0");
    return hash.digest("hex").slice(0, 16);
}
