// One private dockerd for every image build in this process (tests and benchmarks), with a fixed
// root so the imported Node image and BuildKit's cache (layers and cache mounts) survive between
// runs. Several processes may share it: each holds a lease file; the last one to release stops it.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureLocalNodeImage } from "./localNodeImage";
import { PrivateDockerd } from "./privateDockerd";
import { sandboxRuntimeSettings } from "./sandboxRuntime";

export const BUILD_DOCKERD_ROOT = path.resolve(__dirname, "../../.test-work/build-dockerd");

/** daemon.json of the build daemon: BuildKit on, its cache bounded (plain `docker build` uses the daemon's BuildKit). */
const BUILD_DAEMON_JSON = {
    features: { buildkit: true },
    builder: { gc: { enabled: true, defaultKeepStorage: "40GB" } },
    "storage-driver": "overlay2",
    // buildx's builder container is privileged; see sandboxRuntime.ts.
    ...sandboxRuntimeSettings(),
};

let shared: PrivateDockerd | undefined;
let users = 0;

const leaseDir = () => path.join(BUILD_DOCKERD_ROOT, "leases");
const leaseFile = () => path.join(leaseDir(), String(process.pid));

/**
 * The shared build dockerd, started on first use. Pair every call with `releaseBuildDockerd()`
 * (in an `after` hook): the daemon stops when no process holds it any more.
 */
export async function acquireBuildDockerd(): Promise<PrivateDockerd> {
    users += 1;
    if (shared) return shared;
    fs.mkdirSync(leaseDir(), { recursive: true });
    fs.writeFileSync(leaseFile(), `${new Date().toISOString()}\n`);
    const dockerd = new PrivateDockerd({ root: BUILD_DOCKERD_ROOT, daemonJson: BUILD_DAEMON_JSON });
    if (!dockerd.answers()) {
        try {
            await dockerd.start(60000);
        } catch (error) {
            // Another process may have started it at the same moment; its daemon answers then.
            if (!dockerd.answers()) {
                users -= 1;
                fs.rmSync(leaseFile(), { force: true });
                throw error;
            }
        }
    }
    shared = dockerd;
    return dockerd;
}

export async function releaseBuildDockerd(): Promise<void> {
    if (users === 0) return;
    users -= 1;
    if (users > 0 || !shared) return;
    const dockerd = shared;
    shared = undefined;
    fs.rmSync(leaseFile(), { force: true });
    if (liveLeases().length === 0) await dockerd.stop(60000);
}

/** Pids of other processes that still use the daemon (stale lease files of dead processes are removed). */
function liveLeases(): number[] {
    let names: string[] = [];
    try {
        names = fs.readdirSync(leaseDir());
    } catch {
        return [];
    }
    return names.map(Number).filter((pid) => {
        if (!Number.isInteger(pid) || pid <= 0) return false;
        try {
            process.kill(pid, 0);
            return true;
        } catch {
            fs.rmSync(path.join(leaseDir(), String(pid)), { force: true });
            return false;
        }
    });
}

/**
 * The docker client that builds with the daemon's own BuildKit: the 20.10 client (/usr/bin/docker
 * from docker.io). Newer clients send `DOCKER_BUILDKIT=1` builds to buildx, which is absent here.
 * Override with DOCKER_BUILD_CLIENT.
 */
export function buildClient(): string {
    if (process.env.DOCKER_BUILD_CLIENT) return process.env.DOCKER_BUILD_CLIENT;
    return fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";
}

export interface DockerBuildOptions {
    /** Build context folder. */
    context: string;
    /** Dockerfile path (may be outside the context; its `<name>.dockerignore` is then used). */
    dockerfile: string;
    tag: string;
    buildArgs?: Record<string, string>;
    /** Build secrets: id → file on this machine (`--secret id=<id>,src=<file>`). */
    secrets?: Record<string, string>;
    target?: string;
    /** Network for RUN steps; `host` is what npm needs here (the daemon has no bridge). Default host. */
    network?: string;
    noCache?: boolean;
    /** Give up after this long (default 15 min). */
    timeoutMs?: number;
}

export interface BuildStep {
    /** BuildKit's vertex number, e.g. 12 for `#12`. */
    id: number;
    /** The vertex name, e.g. `[deps 4/4] RUN --mount=type=cache,target=/root/.npm npm ci`. */
    name: string;
    cached: boolean;
    /** Seconds BuildKit reports in `#n DONE 3.2s`; undefined for cached or unfinished steps. */
    seconds?: number;
    /** The step's own output lines (without the `#n 0.123 ` prefix). */
    log: string[];
}

export interface DockerBuildResult {
    /** Full `--progress=plain` output. */
    output: string;
    durationMs: number;
    steps: BuildStep[];
}

/** Runs `docker build --progress=plain` against `dockerd`; rejects with the output's tail on failure. */
export function dockerBuild(dockerd: PrivateDockerd, options: DockerBuildOptions): Promise<DockerBuildResult> {
    const args = ["build", "--progress=plain", "-f", options.dockerfile, "-t", options.tag, "--network", options.network ?? "host"];
    for (const [name, value] of Object.entries(options.buildArgs ?? {})) args.push("--build-arg", `${name}=${value}`);
    for (const [id, file] of Object.entries(options.secrets ?? {})) args.push("--secret", `id=${id},src=${file}`);
    if (options.target) args.push("--target", options.target);
    if (options.noCache) args.push("--no-cache");
    args.push(options.context);

    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(buildClient(), args, { env: dockerd.env({ DOCKER_BUILDKIT: "1" }), stdio: ["ignore", "pipe", "pipe"] });
        const chunks: Buffer[] = [];
        child.stdout.on("data", (c: Buffer) => chunks.push(c));
        child.stderr.on("data", (c: Buffer) => chunks.push(c));
        const timer = setTimeout(() => child.kill("SIGTERM"), options.timeoutMs ?? 15 * 60 * 1000);
        child.on("error", (error) => {
            clearTimeout(timer);
            reject(error);
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            const output = Buffer.concat(chunks).toString("utf8");
            if (code !== 0) {
                const tail = output.split("\n").slice(-60).join("\n");
                reject(new Error(`docker build of ${options.tag} failed (${signal ?? `exit ${code}`}):\n${tail}`));
                return;
            }
            resolve({ output, durationMs: Date.now() - started, steps: parsePlainProgress(output) });
        });
    });
}

/** Reads BuildKit's `--progress=plain` output into steps (vertex name, CACHED or DONE with seconds, log lines). */
export function parsePlainProgress(output: string): BuildStep[] {
    const steps = new Map<number, BuildStep>();
    for (const line of output.split("\n")) {
        const match = /^#(\d+) (.*)$/.exec(line);
        if (!match) continue;
        const id = Number(match[1]);
        const rest = match[2];
        let step = steps.get(id);
        if (!step) {
            step = { id, name: rest, cached: false, log: [] };
            steps.set(id, step);
            continue;
        }
        if (rest === "CACHED") step.cached = true;
        else if (/^DONE \d+(\.\d+)?s$/.test(rest)) step.seconds = Number(rest.slice(5, -1));
        else {
            const logLine = /^\d+\.\d+ (.*)$/.exec(rest);
            step.log.push(logLine ? logLine[1] : rest);
        }
    }
    return [...steps.values()];
}

/** The steps whose name contains `fragment` (e.g. `npm ci`), failing loudly when there is none. */
export function stepsNamed(result: DockerBuildResult, fragment: string): BuildStep[] {
    const found = result.steps.filter((s) => s.name.includes(fragment));
    if (found.length === 0) {
        throw new Error(`no build step contains "${fragment}"; steps were:\n${result.steps.map((s) => s.name).join("\n")}`);
    }
    return found;
}

/**
 * The local Node image and, from it, docker/base.Dockerfile without system packages (apt cannot
 * reach Debian's mirrors from a build here): the runtime base every local build uses.
 */
export async function buildLocalBaseImage(dockerd: PrivateDockerd, tag: string): Promise<void> {
    const nodeImage = ensureLocalNodeImage(dockerd);
    await dockerBuild(dockerd, {
        context: path.resolve(__dirname, "../../docker"),
        dockerfile: path.resolve(__dirname, "../../docker/base.Dockerfile"),
        tag,
        buildArgs: { NODE_IMAGE: nodeImage, SYSTEM_PACKAGES: "" },
    });
}
