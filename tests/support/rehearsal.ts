// A stack of the real program (index.ts) deployed with the real engine for the rehearsal: its own
// project folder (a copy of Pulumi.yaml, so stack files never land in the checkout), a file backend
// and passphrase secrets in the test's folder, settings and secrets set through the real CLI, and
// `up`/`preview` through tools/pulumi-stack.ts with the per-phase timings it prints.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { strict as assert } from "node:assert";
import { DeployTimings, describeTimings } from "../../lib/deployTimings";
import { LoadClient, RequestRecord } from "./loadClient";
import { ensureLocalNodeImage } from "./localNodeImage";
import { LocalRegistry } from "./localRegistry";
import { PrivateDockerd } from "./privateDockerd";
import { sandboxRuntimeSettings } from "./sandboxRuntime";
import { EngineStack, loadBuildkitImage, PROJECT_DIR, runProjectTool, runStack, StackRun, stackOutputs, Toolchain } from "./toolchain";

export const REHEARSAL_APP = path.join(PROJECT_DIR, "tests/fixtures/rehearsal-app");

/** What the fixture app does in a release (tests/fixtures/rehearsal-app/behaviour.json). */
export interface AppBehaviour {
    start: "ok" | "crash";
    /** `NAME=value`: crash only where the server's environment has it. */
    crashWhen?: string;
    health: "ok" | "never";
    migration: "ok" | "fail";
}

export const GOOD_RELEASE: AppBehaviour = { start: "ok", health: "ok", migration: "ok" };

export interface DeployRun extends StackRun {
    /** `release plan: …` as the program logged it. */
    plan: string;
    /** Resource changes the engine reported (`changes:` line), empty on failure. */
    changes: Record<string, number>;
    timings?: DeployTimings;
}

export interface RehearsalStackOptions {
    /** Folder of this stack's project copy, state and app copy. */
    work: string;
    stack: string;
    /** Plain settings (key without the project prefix). */
    settings: Record<string, string>;
    secrets: Record<string, string>;
    /** Environment of the engine and the program (DOCKER_HOST, BUILDX_CONFIG, …). */
    env?: Record<string, string>;
    /** File backend folder; stacks that read each other's outputs (promotion) share one. @default <work>/state */
    stateDir?: string;
    /** The app the stack builds, copied into <work>/app. @default REHEARSAL_APP */
    app?: string;
}

export class RehearsalStack {
    readonly projectDir: string;
    readonly appDir: string;
    private readonly target: EngineStack;
    private readonly program: string;

    constructor(
        private readonly toolchain: Toolchain,
        private readonly options: RehearsalStackOptions,
    ) {
        this.projectDir = path.join(options.work, "project");
        this.appDir = path.join(options.work, "app");
        this.target = { projectDir: this.projectDir, stack: options.stack, stateDir: options.stateDir ?? path.join(options.work, "state"), env: options.env };
        this.program = path.relative(this.projectDir, path.join(PROJECT_DIR, "index.ts"));
    }

    /** The state folder of the file backend (checked for plain-text secrets). */
    get stateDir(): string {
        return this.target.stateDir;
    }

    /** Creates the project copy, the app copy and the stack with its settings and secrets. */
    init(): void {
        fs.mkdirSync(this.projectDir, { recursive: true });
        fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(this.projectDir, "Pulumi.yaml"));
        // A promoting stack has no app of its own: it deploys what its source stack serves.
        const builds = this.options.settings.promoteFrom === undefined;
        if (builds) {
            fs.cpSync(this.options.app ?? REHEARSAL_APP, this.appDir, { recursive: true, filter: (src) => !/\/(node_modules|\.medusa)$/.test(src) });
            // The shop's app is a git repository of its own: `release: auto` names each release by its commit.
            this.git(["init", "-q", "-b", "main"]);
            fs.writeFileSync(path.join(this.appDir, ".gitignore"), "node_modules/\n.medusa/\n");
        }
        fs.mkdirSync(this.target.stateDir, { recursive: true });
        this.cli(["stack", "init", this.options.stack, "--secrets-provider", "passphrase"]);
        this.configure({ ...(builds ? { appPath: this.appDir } : {}), release: "auto", ...this.options.settings }, this.options.secrets);
    }

    /** Sets plain settings and secrets with `pulumi config set-all`. */
    configure(settings: Record<string, string>, secrets: Record<string, string> = {}): void {
        const args = ["config", "set-all", "--stack", this.options.stack];
        for (const [key, value] of Object.entries(settings)) args.push("--plaintext", `medusa-deploy:${key}=${value}`);
        for (const [key, value] of Object.entries(secrets)) args.push("--secret", `medusa-deploy:${key}=${value}`);
        this.cli(args);
    }

    unset(key: string): void {
        this.cli(["config", "rm", "--stack", this.options.stack, `medusa-deploy:${key}`]);
    }

    /**
     * Commits the next release of the app (its behaviour and a change a developer would make) and
     * returns its release name, the commit as `release: auto` names it.
     */
    commitRelease(name: string, behaviour: AppBehaviour = GOOD_RELEASE): string {
        fs.writeFileSync(path.join(this.appDir, "behaviour.json"), `${JSON.stringify(behaviour)}\n`);
        fs.writeFileSync(path.join(this.appDir, "src/release-notes.txt"), `${name}\n`);
        return this.commitAll(name);
    }

    /** Commits the app folder as it is and returns the release name `release: auto` gives it. */
    commitAll(message: string): string {
        this.git(["add", "-A"]);
        this.git(["commit", "-q", "-m", message]);
        return this.git(["rev-parse", "--short=12", "HEAD"]).trim();
    }

    private git(args: string[]): string {
        return execFileSync("git", ["-C", this.appDir, "-c", "user.name=Rehearsal", "-c", "user.email=rehearsal@example.invalid", ...args], { encoding: "utf8" });
    }

    /** `pulumi up`; `env` adds to the stack's environment for this run (another machine, an opt-in). */
    async up(extra: string[] = [], env: Record<string, string> = {}): Promise<DeployRun> {
        const target = { ...this.target, env: { ...this.target.env, ...env } };
        return parseRun(await runStack(this.toolchain, target, ["up", "--program", this.program, ...extra], 900000));
    }

    /** `npm run backup` / `npm run restore` (tools/database.ts) for this stack. */
    database(args: string[]): Promise<StackRun> {
        return runProjectTool(this.toolchain, this.target, "tools/database.ts", args, 600000);
    }

    /** `npm run status` of this stack. */
    status(args: string[] = []): Promise<StackRun> {
        return this.tool("tools/status.ts", args);
    }

    /** An operator tool under tools/ (npm run exec, maintenance, edge-preview) for this stack. */
    tool(file: string, args: string[]): Promise<StackRun> {
        return runProjectTool(this.toolchain, this.target, file, args, 120000);
    }

    /** `npm run logs` of this stack (without --follow: it returns). */
    logs(args: string[] = []): Promise<StackRun> {
        return this.tool("tools/logs.ts", args);
    }

    async preview(extra: string[] = []): Promise<DeployRun> {
        return parseRun(await runStack(this.toolchain, this.target, ["preview", "--program", this.program, ...extra], 300000));
    }

    outputs(): Record<string, unknown> {
        return stackOutputs(this.toolchain, this.target);
    }

    /** Every file of the stack's state and backups, as text (to look for plain-text secrets). */
    stateText(): string {
        return (fs.readdirSync(this.target.stateDir, { recursive: true }) as string[])
            .map((f) => path.join(this.target.stateDir, f))
            .filter((f) => fs.statSync(f).isFile())
            .map((f) => fs.readFileSync(f, "utf8"))
            .join("\n");
    }

    private cli(args: string[]): string {
        return execFileSync("pulumi", [...args, "--cwd", this.projectDir], {
            env: {
                ...process.env,
                ...this.toolchain.env,
                PULUMI_BACKEND_URL: `file://${path.resolve(this.target.stateDir)}`,
                PULUMI_CONFIG_PASSPHRASE: "engine-test-passphrase",
                ...this.options.env,
            },
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
        });
    }
}

function parseRun(run: StackRun): DeployRun {
    const changes = JSON.parse(/^changes: (\{.*\})$/m.exec(run.output)?.[1] ?? "{}") as Record<string, number>;
    const timingsJson = /^timings-json: (\{.*\})$/m.exec(run.output)?.[1];
    return {
        ...run,
        plan: /release plan: ([^\n]*)/.exec(run.output)?.[1]?.trim() ?? "",
        changes,
        timings: timingsJson ? (JSON.parse(timingsJson) as DeployTimings) : undefined,
    };
}

/** One line per deploy step: its result, wall time and phases (printed as the rehearsal goes, and at the end). */
export class RehearsalLog {
    readonly lines: string[] = [];

    record(step: string, run: DeployRun): DeployRun {
        const timings = run.timings ? describeTimings(run.timings) : "no timings";
        this.note(`${step}: ${run.status === 0 ? "ok" : "failed"} in ${(run.ms / 1000).toFixed(1)} s (${timings})`);
        return run;
    }

    note(line: string): void {
        this.lines.push(line);
        console.log(`      ${line}`);
    }
}

/** Waits for requests issued after `since`, then asserts every one was served by `colour`. */
export async function assertServedOnlyBy(load: LoadClient | undefined, colour: string, since: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = (load?.records ?? []).filter((r) => r.startedAt > since);
    assert.ok(after.length > 0, "no request completed after the deploy");
    const others = after.filter((r) => r.colour !== colour);
    assert.equal(others.length, 0, `after the deploy ${others.length} of ${after.length} requests were not served by ${colour}: ${JSON.stringify(others.slice(0, 3))}`);
}

/** Request counts of a whole sequence: total, per colour, failed. */
export function loadSummary(records: readonly RequestRecord[]): { total: number; byColour: Record<string, number>; failed: RequestRecord[] } {
    const byColour: Record<string, number> = {};
    for (const r of records) byColour[r.colour ?? "failed"] = (byColour[r.colour ?? "failed"] ?? 0) + 1;
    return { total: records.length, byColour, failed: records.filter((r) => r.error !== undefined) };
}

/** A dockerd a building stack deploys to, the registry it pushes to, and the Node image the builder pulls from it. */
export interface BuildingHost {
    dockerd: PrivateDockerd;
    registry: LocalRegistry;
    nodeImage: string;
}

/**
 * Starts a dockerd and a registry in `work` and loads what a build needs without pulling: the
 * toolchain's BuildKit image, and the local Node image pushed to the registry (the builder resolves
 * FROM images from a registry only). Stop both in `after`.
 */
export async function startBuildingHost(work: string, toolchain: Toolchain): Promise<BuildingHost> {
    const dockerd = new PrivateDockerd({ root: path.join(work, "dockerd"), daemonJson: { ...sandboxRuntimeSettings(), features: { buildkit: true } } });
    await dockerd.start(60000);
    const registry = new LocalRegistry({ root: path.join(work, "registry") });
    await registry.start();
    loadBuildkitImage(toolchain, dockerd.host);
    const nodeImage = `${registry.address}/rehearsal/node:20`;
    dockerd.docker(["tag", ensureLocalNodeImage(dockerd), nodeImage]);
    dockerd.docker(["push", nodeImage]);
    return { dockerd, registry, nodeImage };
}

/**
 * One sequence: once a step fails, the later steps of this suite fail at once without running (they
 * would only test the wreck; never a skip, which CI must not show). Not mocha's `bail`: under
 * `--parallel` a bail terminates every worker of the run, and the results of all the other test
 * files running beside the rehearsal were lost.
 */
export function stopSequenceOnFailure(suite: Mocha.Suite): void {
    let failed: string | undefined;
    suite.beforeEach(function () {
        if (failed) throw new Error(`not run: the earlier step "${failed}" failed, and this one depends on it`);
    });
    suite.afterEach(function () {
        if (this.currentTest?.state === "failed") failed ??= this.currentTest.title;
    });
}
