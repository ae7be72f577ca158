// The engine toolchain tools/toolchain.sh builds: its environment for child processes, and a way to
// run tools/pulumi-stack.ts (the real CLI and plugins) on a throwaway file backend.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Context } from "mocha";
import { requireReal } from "./realComponent";

export const PROJECT_DIR = path.resolve(__dirname, "../..");
const TOOLCHAIN_SCRIPT = path.join(PROJECT_DIR, "tools/toolchain.sh");

export interface Toolchain {
    /** Variables `tools/toolchain.sh env` exports (PATH already joined with this process's). */
    env: Record<string, string>;
    /** The local BuildKit image's name (load it into a daemon with loadBuildkitImage). */
    buildkitImage: string;
    /** Resource plugins installed in the project's Pulumi home, name → versions. */
    plugins: Map<string, string[]>;
}

/** The built toolchain, or undefined with the reason when it is not built for these versions. */
export function loadToolchain(): { toolchain?: Toolchain; reason?: string } {
    let text: string;
    try {
        text = execFileSync("sh", [TOOLCHAIN_SCRIPT, "env"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
        const stderr = (error as { stderr?: Buffer | string }).stderr?.toString().trim();
        return { reason: `${stderr || String(error)} (build it with: npm run toolchain)` };
    }
    const env: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const match = /^export ([A-Z_]+)='([^']*)'(:"\$PATH")?$/.exec(line) ?? /^export ([A-Z_]+)=(\S+)$/.exec(line);
        if (!match) continue;
        env[match[1]] = match[3] ? `${match[2]}:${process.env.PATH ?? ""}` : match[2];
    }
    // The command plugin is a stand-in that points at one checkout's tools/standin/command (the last
    // one that ran the toolchain): point it at this one (idempotent, instant when it already does).
    const standin = path.join(PROJECT_DIR, "tools/standin/command/install.sh");
    if (fs.existsSync(standin)) {
        execFileSync("sh", [standin], {
            env: { ...process.env, ...env, PULUMI: path.join(env.PULUMI_HOME, "versions", pulumiVersion(), "bin", "pulumi") },
            stdio: ["ignore", "ignore", "pipe"],
        });
    }
    const plugins = new Map<string, string[]>();
    const listed = JSON.parse(execFileSync("pulumi", ["plugin", "ls", "--json"], { env: { ...process.env, ...env }, encoding: "utf8" }) || "[]") as {
        name: string;
        kind: string;
        version: string;
    }[];
    for (const plugin of listed.filter((p) => p.kind === "resource")) plugins.set(plugin.name, [...(plugins.get(plugin.name) ?? []), plugin.version]);
    return { toolchain: { env, buildkitImage: env.MEDUSA_DEPLOY_BUILDKIT_IMAGE, plugins } };
}

/** The plugins (name, version) the project's program asks the engine for. */
export const PROGRAM_PLUGINS: ReadonlyArray<readonly [string, string]> = [["docker", "5.2.0"], ["docker-build", "0.0.22"], ["command", "1.2.1"]];

/** The toolchain with `plugins` installed, or the test is skipped (failed under CI) saying how to get it. */
export function requireToolchain(ctx: Context, plugins: ReadonlyArray<readonly [string, string]> = PROGRAM_PLUGINS): Toolchain {
    const loaded = loadToolchain();
    requireReal(ctx, "the engine toolchain", loaded.toolchain !== undefined, loaded.reason ?? "");
    const toolchain = loaded.toolchain as Toolchain;
    for (const [plugin, version] of plugins) {
        requireReal(ctx, `the ${plugin} plugin ${version}`, (toolchain.plugins.get(plugin) ?? []).includes(version), "npm run toolchain");
    }
    return toolchain;
}

function pulumiVersion(): string {
    return (JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "node_modules/pulumi/package.json"), "utf8")) as { version: string }).version;
}

/** Imports the toolchain's BuildKit image into the daemon at dockerHost (no-op when it is there). */
export function loadBuildkitImage(toolchain: Toolchain, dockerHost: string): void {
    execFileSync("sh", [TOOLCHAIN_SCRIPT, "load-buildkit-image"], { env: { ...process.env, ...toolchain.env, DOCKER_HOST: dockerHost }, stdio: ["ignore", "ignore", "pipe"] });
}

export interface StackRun {
    status: number | null;
    output: string;
    ms: number;
}

export interface EngineStack {
    /** Folder of the Pulumi project (Pulumi.yaml and the program). */
    projectDir: string;
    stack: string;
    /** Folder for the file backend's state. */
    stateDir: string;
    /** Extra environment for the engine and the program. */
    env?: Record<string, string>;
}

/** Runs tools/pulumi-stack.ts ACTION for the stack: the real `pulumi` CLI through the Automation API. */
export function runStack(toolchain: Toolchain, target: EngineStack, args: string[], timeoutMs = 600000): Promise<StackRun> {
    return runProjectTool(toolchain, target, "tools/pulumi-stack.ts", args, timeoutMs);
}

/** Runs a tool under tools/ for the stack (`--stack` and `--cwd` added), with the engine's environment. */
export function runProjectTool(toolchain: Toolchain, target: EngineStack, tool: string, args: string[], timeoutMs = 600000): Promise<StackRun> {
    fs.mkdirSync(target.stateDir, { recursive: true });
    const env = engineEnv(toolchain, target);
    const tsNode = path.join(PROJECT_DIR, "node_modules/.bin/ts-node");
    return new Promise((resolve, reject) => {
        const started = Date.now();
        // The stack and folder go before a "--": what follows it is a command of its own (npm run exec).
        const end = args.includes("--") ? args.indexOf("--") : args.length;
        const words = [...args.slice(0, end), "--stack", target.stack, "--cwd", target.projectDir, ...args.slice(end)];
        const child = spawn(tsNode, ["--transpile-only", path.join(PROJECT_DIR, tool), ...words], { env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        const kill = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("error", reject);
        child.on("close", (status) => {
            clearTimeout(kill);
            resolve({ status, output, ms: Date.now() - started });
        });
    });
}

/** `pulumi stack output --json` of the stack (needs no language host). */
export function stackOutputs(toolchain: Toolchain, target: EngineStack): Record<string, unknown> {
    const text = execFileSync("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", target.stack, "--cwd", target.projectDir], {
        env: engineEnv(toolchain, target),
        encoding: "utf8",
    });
    return JSON.parse(text) as Record<string, unknown>;
}

function engineEnv(toolchain: Toolchain, target: EngineStack): NodeJS.ProcessEnv {
    return {
        ...process.env,
        ...toolchain.env,
        PULUMI_BACKEND_URL: `file://${path.resolve(target.stateDir)}`,
        PULUMI_CONFIG_PASSPHRASE: "engine-test-passphrase",
        // ts-node type-checks the program at every preview and up (8.3 s of CPU against 3.5 s); the
        // suite checks the types once instead (tests/engine/typecheck.test.ts).
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        ...target.env,
    };
}
