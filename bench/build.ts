// Build benchmark: the seed's Phase 2 recipe (docker/seed-phase2.Dockerfile) against ours
// (docker/medusa.Dockerfile) on the same app, with dockerd's own BuildKit on the shared build daemon.
//
//   npx ts-node bench/build.ts              the example store (examples/medusa-store); writes bench/results/build.md
//   npx ts-node bench/build.ts --fixture    tests/fixtures/medusa-like-app; writes bench/results/build-fixture.md
//   options: --only seed|ours  (one recipe; no results file)
//
// Per recipe, in order: cold (builder cache pruned with `docker builder prune -af`, image removed),
// no-change rebuild, source-only change (a comment appended to a file under src/), dependency change
// (package.json and package-lock.json replaced by a variant with one more small dependency).
// Everything happens on copies under .test-work/bench-build; the repository's files are not modified
// except the store's own gitignored .medusa, written by the bare `medusa build` timed on the host.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PrivateDockerd } from "../tests/support/privateDockerd";
import { acquireBuildDockerd, releaseBuildDockerd, dockerBuild, buildClient, BuildStep, buildLocalBaseImage } from "../tests/support/buildDockerd";
import { LOCAL_NODE_IMAGE } from "../tests/support/localNodeImage";
import { bareBuildSeconds, changeSource, freshCopy, loadAverage, run } from "./appCopies";

const repo = path.resolve(__dirname, "..");
const work = path.join(repo, ".test-work/bench-build");
const baseImage = "medusa-deploy/base:bench";

/** The dependency the "dependency change" scenario adds: small, and in neither app's tree. */
const ADDED_DEPENDENCY = { name: "dayjs", version: "1.11.13" };

type Recipe = "seed" | "ours";
type Scenario = "cold" | "no-change" | "source-only" | "dependency";
const SCENARIOS: Scenario[] = ["cold", "no-change", "source-only", "dependency"];

const DOCKERFILES: Record<Recipe, string> = {
    seed: path.join(repo, "docker/seed-phase2.Dockerfile"),
    ours: path.join(repo, "docker/medusa.Dockerfile"),
};

interface Measurement {
    seconds: number;
    imageBytes: number;
    load: string;
    /** The slowest steps that really ran (not cached), for the breakdown. */
    slowest: { name: string; seconds: number }[];
}

interface Args {
    fixture: boolean;
    only?: Recipe;
}

function parseArgs(argv: string[]): Args {
    const args: Args = { fixture: false };
    for (let i = 0; i < argv.length; i += 1) {
        if (argv[i] === "--fixture") args.fixture = true;
        else if (argv[i] === "--only" && (argv[i + 1] === "seed" || argv[i + 1] === "ours")) args.only = argv[++i] as Recipe;
        else throw new Error(`unknown argument ${argv[i]}; usage: npx ts-node bench/build.ts [--fixture] [--only seed|ours]`);
    }
    return args;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** `docker` against the build daemon, with the client whose build uses the daemon's BuildKit. */
function buildDocker(dockerd: PrivateDockerd, args: string[]): string {
    return execFileSync(buildClient(), args, { env: dockerd.env(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
}

/** package.json + package-lock.json with ADDED_DEPENDENCY, resolved once by npm (lockfile only, nothing installed). */
function prepareDependencyVariant(source: string, destination: string): void {
    fs.rmSync(destination, { recursive: true, force: true });
    fs.mkdirSync(destination, { recursive: true });
    for (const file of ["package.json", "package-lock.json"]) fs.copyFileSync(path.join(source, file), path.join(destination, file));
    run("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--save-exact",
        `${ADDED_DEPENDENCY.name}@${ADDED_DEPENDENCY.version}`], destination);
    const lock = fs.readFileSync(path.join(destination, "package-lock.json"), "utf8");
    if (!lock.includes(`"node_modules/${ADDED_DEPENDENCY.name}"`)) throw new Error(`npm did not add ${ADDED_DEPENDENCY.name} to the lockfile`);
}

async function measure(dockerd: PrivateDockerd, recipe: Recipe, app: string, scenario: Scenario, variant: string): Promise<Measurement> {
    const tag = `medusa-deploy/bench-${recipe}:latest`;
    if (scenario === "cold") {
        try {
            buildDocker(dockerd, ["image", "rm", "-f", tag]);
        } catch {
            // absent
        }
        buildDocker(dockerd, ["builder", "prune", "-af"]);
    } else if (scenario === "source-only") {
        console.log(`  changed ${changeSource(app)}`);
    } else if (scenario === "dependency") {
        for (const file of ["package.json", "package-lock.json"]) fs.copyFileSync(path.join(variant, file), path.join(app, file));
    }
    const load = loadAverage();
    const result = await dockerBuild(dockerd, {
        context: app,
        dockerfile: DOCKERFILES[recipe],
        tag,
        buildArgs: { NODE_IMAGE: LOCAL_NODE_IMAGE, BASE_IMAGE: baseImage },
        timeoutMs: 40 * 60 * 1000,
    });
    const imageBytes = Number(buildDocker(dockerd, ["image", "inspect", "--format", "{{.Size}}", tag]).trim());
    const slowest = result.steps
        .filter((s: BuildStep) => !s.cached && (s.seconds ?? 0) >= 1)
        .sort((a, b) => (b.seconds ?? 0) - (a.seconds ?? 0))
        .slice(0, 5)
        .map((s) => ({ name: s.name.replace(/\s+/g, " ").slice(0, 90), seconds: s.seconds ?? 0 }));
    return { seconds: round1(result.durationMs / 1000), imageBytes, load, slowest };
}

interface Target {
    label: string;
    limit: string;
    value: string;
    pass: boolean;
}

function targets(results: Record<Recipe, Record<Scenario, Measurement>>, bareSeconds: number): Target[] {
    const ratio = (scenario: Scenario) => results.ours[scenario].seconds / results.seed[scenario].seconds;
    const sizeRatio = results.ours.cold.imageBytes / results.seed.cold.imageBytes;
    const sourceVsBare = results.ours["source-only"].seconds / bareSeconds;
    return [
        { label: "source-only change vs seed", limit: "≤ 0.30×", value: `${ratio("source-only").toFixed(2)}×`, pass: ratio("source-only") <= 0.3 },
        { label: "source-only change vs bare `medusa build`", limit: "≤ 1.20×", value: `${sourceVsBare.toFixed(2)}× (${bareSeconds.toFixed(1)} s bare)`, pass: sourceVsBare <= 1.2 },
        { label: "dependency change vs seed", limit: "≤ 0.45×", value: `${ratio("dependency").toFixed(2)}×`, pass: ratio("dependency") <= 0.45 },
        { label: "cold vs seed", limit: "≤ 0.60×", value: `${ratio("cold").toFixed(2)}×`, pass: ratio("cold") <= 0.6 },
        { label: "image size vs seed", limit: "≤ 0.60×", value: `${sizeRatio.toFixed(2)}×`, pass: sizeRatio <= 0.6 },
    ];
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

function table(results: Record<Recipe, Record<Scenario, Measurement>>): string {
    const lines = ["| scenario | seed (s) | ours (s) | ours/seed | load avg at start (seed / ours) |", "|---|---:|---:|---:|---|"];
    for (const scenario of SCENARIOS) {
        const seed = results.seed[scenario];
        const ours = results.ours[scenario];
        lines.push(`| ${scenario} | ${seed.seconds.toFixed(1)} | ${ours.seconds.toFixed(1)} | ${(ours.seconds / seed.seconds).toFixed(2)}× | ${seed.load} / ${ours.load} |`);
    }
    const seedSize = results.seed.cold.imageBytes;
    const oursSize = results.ours.cold.imageBytes;
    lines.push(`| image size (after cold) | ${mb(seedSize)} | ${mb(oursSize)} | ${(oursSize / seedSize).toFixed(2)}× | |`);
    return lines.join("\n");
}

function breakdown(results: Record<Recipe, Record<Scenario, Measurement>>): string {
    const lines: string[] = [];
    for (const recipe of ["seed", "ours"] as Recipe[]) {
        for (const scenario of SCENARIOS) {
            const steps = results[recipe][scenario].slowest.map((s) => `${s.seconds.toFixed(1)} s \`${s.name.replace(/`/g, "'")}\``);
            lines.push(`- ${recipe}, ${scenario}: ${steps.length ? steps.join("; ") : "every step cached"}`);
        }
    }
    return lines.join("\n");
}

function machine(dockerd: PrivateDockerd): string {
    const version = buildDocker(dockerd, ["version", "--format", "{{.Server.Version}}"]).trim();
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    return [
        `- date: ${new Date().toISOString()}`,
        `- CPUs: ${os.cpus().length} (nproc ${execFileSync("nproc", { encoding: "utf8" }).trim()}, ${cpu})`,
        `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
        `- dockerd ${version} (its own BuildKit, \`DOCKER_BUILDKIT=1\` with the 20.10 client), storage overlay2`,
        `- node ${process.version} (the build stages use an image imported from this machine's node, \`${LOCAL_NODE_IMAGE}\`)`,
    ].join("\n");
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    const source = args.fixture ? path.join(repo, "tests/fixtures/medusa-like-app") : path.join(repo, "examples/medusa-store");
    const recipes: Recipe[] = args.only ? [args.only] : ["seed", "ours"];
    const appName = path.basename(source);
    fs.mkdirSync(work, { recursive: true });

    let bareSeconds = 0;
    let bareLoad = "";
    const variant = path.join(work, `${appName}-dependency-variant`);
    prepareDependencyVariant(source, variant);

    const dockerd = await acquireBuildDockerd();
    try {
        await buildLocalBaseImage(dockerd, baseImage);

        const results = {} as Record<Recipe, Record<Scenario, Measurement>>;
        for (const recipe of recipes) {
            const app = path.join(work, `${appName}-${recipe}`);
            freshCopy(source, app);
            results[recipe] = {} as Record<Scenario, Measurement>;
            for (const scenario of SCENARIOS) {
                if (scenario === "source-only" && (recipe === "ours" || recipes.length === 1)) {
                    // Timed right before the build it is compared with, so both see the same machine load.
                    bareLoad = loadAverage();
                    console.log(`bare build of ${appName} on the host (load ${bareLoad})`);
                    bareSeconds = round1(bareBuildSeconds(source, work));
                    console.log(`  ${bareSeconds} s`);
                }
                console.log(`${recipe}: ${scenario} (load ${loadAverage()})`);
                const m = await measure(dockerd, recipe, app, scenario, variant);
                results[recipe][scenario] = m;
                console.log(`  ${m.seconds} s, image ${mb(m.imageBytes)}`);
            }
        }
        if (recipes.length < 2) return;

        const evaluated = targets(results, bareSeconds);
        const report = [
            `# Build benchmark: seed Phase 2 recipe vs docker/medusa.Dockerfile`,
            ``,
            `App: \`${path.relative(repo, source)}\` (${countLockPackages(source)} packages in its lockfile). Command: \`npx ts-node bench/build.ts${args.fixture ? " --fixture" : ""}\`.`,
            ``,
            `## Machine`,
            ``,
            machine(dockerd),
            ``,
            `## Wall time per scenario`,
            ``,
            `Scenarios run in this order for each recipe, seed first: cold (\`docker builder prune -af\` and the image removed), ` +
                `no-change rebuild, source-only change (a comment appended to a file under src/), dependency change ` +
                `(\`${ADDED_DEPENDENCY.name}@${ADDED_DEPENDENCY.version}\` added to package.json and the lockfile). ` +
                `Both recipes build with the same Node image; the runtime base for ours is docker/base.Dockerfile with ` +
                `SYSTEM_PACKAGES="" (no Chromium), and the seed's \`apk add\` lines are no-ops on this image, so neither image holds the system packages.`,
            ``,
            table(results),
            ``,
            `Bare build on the host (\`npm run build\` in the app folder, node_modules present), timed right before ours' source-only build: ${bareSeconds.toFixed(1)} s (load avg at start ${bareLoad}).`,
            ``,
            `## Targets (DESIGN.md section 6)`,
            ``,
            `| target | limit | measured | result |`,
            `|---|---|---|---|`,
            ...evaluated.map((t) => `| ${t.label} | ${t.limit} | ${t.value} | ${t.pass ? "PASS" : "FAIL"} |`),
            ``,
            `## Slowest steps that ran (BuildKit's own step times)`,
            ``,
            breakdown(results),
            ``,
        ].join("\n");
        const resultsFile = path.join(repo, "bench/results", args.fixture ? "build-fixture.md" : "build.md");
        fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
        fs.writeFileSync(resultsFile, report);
        console.log(`\n${table(results)}\n`);
        for (const t of evaluated) console.log(`${t.pass ? "PASS" : "FAIL"}  ${t.label}: ${t.value} (limit ${t.limit})`);
        console.log(`\nwritten to ${path.relative(repo, resultsFile)}`);
    } finally {
        await releaseBuildDockerd();
    }
}

function countLockPackages(app: string): number {
    const lock = JSON.parse(fs.readFileSync(path.join(app, "package-lock.json"), "utf8")) as { packages?: Record<string, unknown> };
    return Object.keys(lock.packages ?? {}).filter((key) => key !== "").length;
}

main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack ?? error.message : String(error));
    process.exitCode = 1;
});
