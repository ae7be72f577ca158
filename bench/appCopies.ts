// What the benchmarks do to an app: copy it as its .dockerignore would, change one source file, and
// time its own build on the host (the reference every build and deploy figure is a ratio of).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(" ");

export function run(command: string, args: string[], cwd: string): void {
    execFileSync(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, MEDUSA_DISABLE_TELEMETRY: "true" }, maxBuffer: 256 * 1024 * 1024 });
}

/** Copies the app without what its .dockerignore leaves out anyway (node_modules, .medusa). */
export function freshCopy(source: string, destination: string): void {
    fs.rmSync(destination, { recursive: true, force: true });
    fs.cpSync(source, destination, { recursive: true, filter: (src) => !/\/(node_modules|\.medusa)$/.test(src) });
    // The seed recipe copies start.sh from the app root, as the seed's app has one.
    const startScript = path.join(destination, "start.sh");
    if (!fs.existsSync(startScript)) fs.writeFileSync(startScript, "#!/bin/sh\nexec npx medusa start\n", { mode: 0o755 });
}

/** Appends a comment to the first source file under `under` (default src/), so only the app's sources change. */
export function changeSource(app: string, under = "src"): string {
    const folder = path.join(app, under);
    const files = (fs.readdirSync(folder, { recursive: true }) as string[]).filter((f) => /\.(ts|js|tsx|jsx)$/.test(f)).sort();
    if (files.length === 0) throw new Error(`no source file under ${folder}`);
    const file = path.join(folder, files[0]);
    fs.appendFileSync(file, `\n// bench source change ${new Date().toISOString()}\n`);
    return path.relative(app, file);
}

/**
 * Seconds of the app's own build on this machine, outside Docker: in the app's folder when its
 * node_modules is installed (the build only writes the gitignored .medusa), else in a copy under
 * `work` after `npm ci`.
 */
export function bareBuildSeconds(source: string, work: string): number {
    let folder = source;
    if (!fs.existsSync(path.join(source, "node_modules"))) {
        folder = path.join(work, `${path.basename(source)}-bare`);
        freshCopy(source, folder);
        run("npm", ["ci", "--no-audit", "--no-fund"], folder);
    }
    const started = Date.now();
    run("npm", ["run", "build"], folder);
    return (Date.now() - started) / 1000;
}
