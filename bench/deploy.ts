// Deploy benchmark: the example store (examples/medusa-store) released with the program's own
// `pulumi up` on the real engine (the toolchain tools/toolchain.sh builds), on a dockerd and registry
// of its own, next to the store's bare `medusa build` on the host in the same run.
//
//   npx ts-node --transpile-only bench/deploy.ts     writes bench/results/deploy.md
//
// In order: the bare build on the host; the first deploy (cold: nothing cached); a source-only
// release (a comment appended to a file under src/, committed: `release: auto` names it); the same
// release again (the engine finds nothing to do). Per-phase timings are the engine's step events as
// tools/pulumi-stack.ts reports them (lib/deployTimings.ts). Needs root, dockerd, docker-registry,
// runc and the npm registry (the image build installs the store's ~1,100 packages once).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeployTimings, describeTimings, PHASE_ORDER } from "../lib/deployTimings";
import { freePort } from "../tests/support/haproxyEdge";
import { ensureLocalHaproxyImage } from "../tests/support/localHaproxyImage";
import { ensureLocalPostgresImage, ensureLocalRedisImage } from "../tests/support/localServiceImages";
import { unmountUnder } from "../tests/support/privateDockerd";
import { DeployRun, RehearsalStack, startBuildingHost } from "../tests/support/rehearsal";
import { loadToolchain, PROJECT_DIR } from "../tests/support/toolchain";
import { bareBuildSeconds, changeSource, loadAverage } from "./appCopies";

const STORE = path.join(PROJECT_DIR, "examples/medusa-store");
const WORK = path.join(PROJECT_DIR, ".test-work/bench-deploy");
const RESULTS = path.join(PROJECT_DIR, "bench/results/deploy.md");
/** Whole source-only release against the bare `medusa build` (issue 15). */
const RELEASE_TARGET = 1.5;

interface Step {
    name: string;
    run: DeployRun;
    load: string;
}

const secret = (bytes: number) => crypto.randomBytes(bytes).toString("hex");
const s = (ms: number) => (ms / 1000).toFixed(1);

async function main(): Promise<void> {
    const { toolchain, reason } = loadToolchain();
    if (!toolchain) throw new Error(`the engine toolchain is not built: ${reason}`);
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(WORK, { recursive: true });

    const bareLoad = loadAverage();
    console.log(`bare build of the store on the host (load ${bareLoad}) ...`);
    const bareSeconds = bareBuildSeconds(STORE, WORK);
    console.log(`  ${bareSeconds.toFixed(1)} s`);

    const { dockerd, registry, nodeImage } = await startBuildingHost(WORK, toolchain);
    const steps: Step[] = [];
    try {
        const stack = new RehearsalStack(toolchain, {
            work: WORK,
            stack: "bench-deploy",
            app: STORE,
            settings: {
                host: "local",
                hostStateDir: path.join(WORK, "host-state"),
                registry: `${registry.address}/bench/shop`,
                buildkitImage: toolchain.buildkitImage,
                nodeImage,
                systemPackages: "",
                postgresImage: ensureLocalPostgresImage(dockerd),
                redisImage: ensureLocalRedisImage(dockerd),
                edgeImage: ensureLocalHaproxyImage(dockerd),
                edgePort: String(await freePort()),
                healthTimeoutSeconds: "300",
                // The post-switch watch is a safety window the operator chooses (30 s by default),
                // not work: 3 s here, and said so in the results.
                switchWatchSeconds: "3",
                allowMutableImages: "edgeImage,postgresImage,redisImage",
                buildNetwork: "host",
            },
            secrets: { jwtSecret: secret(32), cookieSecret: secret(32), postgresPassword: secret(16) },
            env: { DOCKER_HOST: dockerd.host, BUILDX_CONFIG: path.join(WORK, "buildx") },
        });
        stack.init();

        const deploy = async (name: string): Promise<DeployRun> => {
            const load = loadAverage();
            console.log(`${name} (load ${load}) ...`);
            const run = await stack.up();
            if (run.status !== 0) throw new Error(`${name}: pulumi up failed:\n${run.output.slice(-6000)}`);
            steps.push({ name, run, load });
            console.log(`  ${s(run.ms)} s (${run.timings ? describeTimings(run.timings) : "no timings"})`);
            const health = await fetch(new URL("/health", String(stack.outputs().url)));
            if (health.status !== 200) throw new Error(`${name}: the shop's /health through the edge answered ${health.status}`);
            return run;
        };

        stack.commitAll("A");
        await deploy("first deploy, cold");
        console.log(`  changed ${changeSource(stack.appDir)}`);
        stack.commitAll("B: source-only change");
        const sourceOnly = await deploy("source-only release");
        const again = await deploy("the same release again");
        if (Object.keys(again.changes).some((op) => op !== "same")) console.log(`  note: the repeat changed ${JSON.stringify(again.changes)}`);

        const report = render(steps, bareSeconds, bareLoad, sourceOnly, dockerd.docker(["version", "--format", "{{.Server.Version}}"]).trim());
        fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
        fs.writeFileSync(RESULTS, report);
        console.log(`\n${report}\nwritten to ${path.relative(PROJECT_DIR, RESULTS)}`);
    } finally {
        await registry.stop();
        await dockerd.stop(60000);
        unmountUnder(WORK);
    }
}

function phaseCells(timings: DeployTimings | undefined): string[] {
    return PHASE_ORDER.map((phase) => (timings?.phases[phase] !== undefined ? s(timings.phases[phase] ?? 0) : "–"));
}

function render(steps: Step[], bareSeconds: number, bareLoad: string, sourceOnly: DeployRun, dockerVersion: string): string {
    const wallRatio = sourceOnly.ms / 1000 / bareSeconds;
    const stepRatio = (sourceOnly.timings?.totalMs ?? Number.NaN) / 1000 / bareSeconds;
    return [
        "# Deploy benchmark: the example store released with `pulumi up` on the real engine",
        "",
        "Command: `npx ts-node --transpile-only bench/deploy.ts`. App: `examples/medusa-store`, its own git repository (`release: auto`),",
        "built on the host's BuildKit (the toolchain's buildkitd) with a registry cache, deployed to a local dockerd",
        "with the stack's own Postgres, Redis and edge. Switch watch 3 s (the default 30 s is a safety window, not work).",
        "",
        "## Machine",
        "",
        `- date: ${new Date().toISOString()}`,
        `- CPUs: ${os.cpus().length} (${os.cpus()[0]?.model ?? "unknown CPU"}), memory ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
        `- dockerd ${dockerVersion}, node ${process.version}`,
        "",
        "## Per deploy (seconds)",
        "",
        `| step | load at start | \`pulumi up\` wall | engine steps | ${PHASE_ORDER.join(" | ")} |`,
        `|---|---|---|---|${PHASE_ORDER.map(() => "---").join("|")}|`,
        ...steps.map((step) => `| ${step.name} | ${step.load} | ${s(step.run.ms)} | ${step.run.timings ? s(step.run.timings.totalMs) : "–"} | ${phaseCells(step.run.timings).join(" | ")} |`),
        "",
        "`pulumi up` wall is the whole command (engine and plugins starting, the program running, every step);",
        "engine steps is the first resource step's start to the last one's end. Phases overlap where the engine runs steps in parallel.",
        "",
        `Bare \`npm run build\` (\`medusa build\`) of the store on the host, node_modules present, timed first: ${bareSeconds.toFixed(1)} s (load ${bareLoad}).`,
        "",
        "## Target (issue 15)",
        "",
        "| target | limit | measured | result |",
        "|---|---|---|---|",
        `| whole source-only release (\`pulumi up\` wall) vs bare build | ≤ ${RELEASE_TARGET}× | ${wallRatio.toFixed(2)}× (${s(sourceOnly.ms)} s / ${bareSeconds.toFixed(1)} s) | ${wallRatio <= RELEASE_TARGET ? "PASS" : "FAIL"} |`,
        `| its engine steps vs bare build | (for reference) | ${stepRatio.toFixed(2)}× | |`,
        "",
    ].join("\n");
}

main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack ?? error.message : String(error));
    process.exitCode = 1;
});
