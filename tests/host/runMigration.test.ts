// host/run-migration.sh against a real dockerd of the test's own (PrivateDockerd), with a tiny image
// made by `docker import` from a static busybox and a /migrate script standing in for
// `medusa db:migrate`: it checks the environment arrived (by hash, so the secret is in no argv),
// fails with a given code, or sleeps.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd } from "../support/privateDockerd";
import { commandExists, isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";
import { importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";
import { commandLinesContaining } from "../support/processCommandLines";

const SCRIPT = path.resolve(__dirname, "../../host/run-migration.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/run-migration");
const IMAGE = "medusa-deploy-test/migrate-stub:1";
const NAME = "medusa-test-green-migrate";

// Unique per run, so finding it anywhere can only mean this test's value leaked.
const SECRET = `postgres://medusa:s3cret-${randomBytes(8).toString("hex")}@db:5432/medusa`;
// Characters a shell or a naive parser would mangle; env-file values are taken literally.
const TRICKY = `a b $HOME "double" 'single' #not-a-comment =x`;
const ENV_LINES = `# the container's environment\nDATABASE_URL=${SECRET}\nTRICKY=${TRICKY}\nNODE_ENV=production\n`;

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

const MIGRATE_STUB = `#!/bin/sh
# Stands in for "medusa db:migrate" in tests/host/runMigration.test.ts.
echo "migrate: start $1"
case "$1" in
check-env)
    shift
    for pair in "$@"; do
        name=\${pair%%=*}
        eval "value=\\\${$name-}"
        got=$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)
        if [ "$got" != "\${pair#*=}" ]; then
            echo "migrate: $name did not arrive intact"
            exit 4
        fi
    done
    echo "migrate: environment ok"
    ;;
fail)
    echo "migrate: applying 20250101_add_product_index"
    echo 'migrate: error: relation "product" does not exist'
    exit "$2"
    ;;
sleep)
    sleep "$2"
    ;;
leak)
    password=\${DATABASE_URL#*://*:}
    password=\${password%%@*}
    echo "migrate: error: could not connect to $DATABASE_URL"
    echo "migrate: authentication failed for password \"$password\" (NODE_ENV=$NODE_ENV)"
    exit 3
    ;;
esac
echo "migrate: done"
`;


function runScript(env: NodeJS.ProcessEnv, input: string, onStart?: (pid: number) => void): Promise<ScriptRun> {
    return runShellScript(SCRIPT, { env, input, onStart });
}


/** Regular files under `dir` (not following links) whose content contains `needle`. */
function filesContaining(dir: string, needle: string, depth = 6): string[] {
    if (depth < 0) return [];
    let entries: fs.Dirent[];
    try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
        return [];
    }
    const found: string[] = [];
    for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) found.push(...filesContaining(full, needle, depth - 1));
        else if (entry.isFile()) {
            try {
                if (fs.statSync(full).size > 4 * 1024 * 1024) continue;
                if (fs.readFileSync(full).includes(needle)) found.push(full);
            } catch {
                // unreadable or removed meanwhile
            }
        }
    }
    return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


describe("host/run-migration.sh against a real dockerd", function () {
    this.timeout(120000);
    let dockerd: PrivateDockerd;

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 60000 }).trim();
    const containersNamed = (name: string): string => docker(["ps", "-a", "-q", "--filter", `name=^/${name}$`]);
    /** Whether the migration container exists and runs; quiet while it does not exist yet. */
    const migrationRunning = (): boolean => {
        try {
            const state = execFileSync("docker", ["inspect", "-f", "{{.State.Running}}", NAME], {
                env: dockerd.env(),
                encoding: "utf8",
                stdio: ["ignore", "pipe", "ignore"],
                timeout: 10000,
            });
            return state.trim() === "true";
        } catch {
            return false;
        }
    };

    function scriptEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
        return {
            PATH: process.env.PATH,
            DOCKER_HOST: dockerd.host,
            MIGRATION_IMAGE: IMAGE,
            MIGRATION_NAME: NAME,
            ...extra,
        };
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker"], "apt-get install -y docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined && commandExists("busybox"), "apt-get install -y busybox-static");

        fs.mkdirSync(ROOT, { recursive: true });
        dockerd = new PrivateDockerd({ root: path.join(ROOT, "dockerd") });
        await dockerd.start();

        importBusyboxImage(dockerd, IMAGE, ROOT, {
            applets: ["sh", "sleep", "sha256sum", "cut", "echo", "cat", "env"],
            files: { "/migrate": { content: MIGRATE_STUB, mode: 0o755 } },
        });
        const leftover = containersNamed(NAME);
        if (leftover) docker(["rm", "-f", leftover]);
    });

    after(async function () {
        if (!dockerd) return;
        await dockerd.shutdown();
    });

    it("runs the migration with the environment from stdin, intact, and says how long it took", async function () {
        const command = `/migrate check-env DATABASE_URL=${sha256(SECRET)} TRICKY=${sha256(TRICKY)} NODE_ENV=${sha256("production")}`;
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: command }), ENV_LINES);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /migrate: environment ok/);
        assert.match(result.stdout.trim().split("\n").slice(-1)[0], /^migration: ok \([0-9]+s\)$/);
        assert.equal(containersNamed(NAME), "", "the container is removed after it ran");
        assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET));
        console.log(`      migration run took ${result.ms} ms end to end`);
    });

    it("keeps the secret out of every command line, of its output and of any file left in /tmp (on MIGRATION_NETWORK)", async function () {
        let seenWhileRunning: string[] | undefined;
        let containerArgs = "";
        let networkMode = "";
        const run = runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 3", MIGRATION_NETWORK: "none" }), ENV_LINES, () => {
            void (async () => {
                // Look while the container runs, when the docker CLI and the container both exist.
                for (let i = 0; i < 100 && seenWhileRunning === undefined; i++) {
                    await sleep(100);
                    if (!migrationRunning()) continue;
                    containerArgs = docker(["inspect", "-f", "{{.Path}} {{json .Args}}", NAME]);
                    networkMode = docker(["inspect", "-f", "{{.HostConfig.NetworkMode}}", NAME]);
                    seenWhileRunning = commandLinesContaining(SECRET);
                }
            })();
        });
        const result = await run;
        assert.equal(result.status, 0, result.stderr);
        assert.ok(seenWhileRunning !== undefined, "the container was observed running");
        assert.deepEqual(seenWhileRunning, [], "no process has the secret in its command line");
        assert.equal(containerArgs, `/migrate ["sleep","3"]`);
        assert.equal(networkMode, "none", "MIGRATION_NETWORK is the container's network");
        assert.ok(!result.stdout.includes(SECRET), "stdout has no secret");
        assert.ok(!result.stderr.includes(SECRET), "stderr has no secret");
        assert.deepEqual(filesContaining("/tmp", SECRET), [], "no file in /tmp holds the secret");
        // The daemon held it in the container's config while it ran; --rm took that away too.
        assert.deepEqual(filesContaining(path.join(dockerd.root, "data", "containers"), SECRET), []);
    });

    it("a failed migration exits non-zero, says the live colour was not touched, and quotes the output's tail", async function () {
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate fail 3" }), ENV_LINES);
        assert.equal(result.status, 1);
        assert.match(result.stderr, new RegExp(`migration failed \\(exit 3\\) in ${NAME}: the live colour was not touched`));
        assert.match(result.stderr, /last lines of its output:\n(.*\n)*.*relation "product" does not exist/);
        assert.doesNotMatch(result.stdout, /migration: ok/);
        assert.equal(containersNamed(NAME), "");
        assert.ok(!result.stdout.includes(SECRET) && !result.stderr.includes(SECRET));
    });

    it("a migration that prints a secret has it masked in everything the script prints", async function () {
        const password = /:\/\/[^:]+:([^@]+)@/.exec(SECRET)?.[1] ?? "";
        assert.ok(password.length > 8);
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate leak" }), ENV_LINES);
        assert.equal(result.status, 1, result.stdout + result.stderr);
        const printed = result.stdout + result.stderr;
        assert.match(printed, /could not connect to \[secret\]/);
        assert.match(printed, /authentication failed for password "?\[secret\]"? \(NODE_ENV=production\)/, "only secret values are masked");
        assert.ok(!printed.includes(SECRET) && !printed.includes(password), "the secret or its password reached the output");
        assert.match(result.stderr, /last lines of its output:\n(.*\n)*.*could not connect to \[secret\]/);
        assert.deepEqual(filesContaining("/tmp", password), [], "no file in /tmp holds the password");
    });

    it("replaces a leftover container of the same name", async function () {
        const leftover = docker(["run", "-d", "--name", NAME, IMAGE, "/migrate", "sleep", "300"]);
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 0" }), ENV_LINES);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`removed leftover container ${NAME} \\(was running\\)`));
        assert.match(result.stdout, /migration: ok/);
        assert.equal(containersNamed(NAME), "");
        assert.equal(docker(["ps", "-a", "-q", "--no-trunc", "--filter", `id=${leftover}`]), "", "the leftover is gone");
    });

    it("a migration running past MIGRATION_TIMEOUT is stopped, its container removed (coreutils timeout)", async function () {
        assert.ok(commandExists("timeout"), "coreutils timeout is installed here");
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 60", MIGRATION_TIMEOUT: "2" }), ENV_LINES);
        assert.equal(result.status, 124, result.stderr);
        assert.match(result.stderr, new RegExp(`migration timed out after 2s in ${NAME}: the live colour was not touched`));
        assert.ok(result.ms < 20000, `stopped within 20 s (took ${result.ms} ms)`);
        assert.equal(containersNamed(NAME), "", "no container is left running");
        console.log(`      timed-out run returned after ${result.ms} ms`);
    });

    it("without coreutils timeout, its watchdog stops the container at MIGRATION_TIMEOUT", async function () {
        // A PATH holding only what the script needs, minus timeout.
        const bin = path.join(ROOT, "path-without-timeout");
        fs.rmSync(bin, { recursive: true, force: true });
        fs.mkdirSync(bin);
        for (const tool of ["docker", "date", "mktemp", "rm", "cat", "tail", "sed", "tr", "sleep", "tee", "awk", "dirname"]) {
            const real = execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
            fs.symlinkSync(real, path.join(bin, tool));
        }
        // A run that ends in time stops its watchdog (and the watchdog's sleep) too.
        const quick = await runScript({ ...scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 0", MIGRATION_TIMEOUT: "487" }), PATH: bin }, ENV_LINES);
        assert.equal(quick.status, 0, quick.stderr);
        await sleep(200);
        assert.deepEqual(commandLinesContaining("sleep 487"), [], "the watchdog's sleep is gone");

        const result = await runScript({ ...scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 60", MIGRATION_TIMEOUT: "2" }), PATH: bin }, ENV_LINES);
        assert.equal(result.status, 124, result.stderr);
        assert.match(result.stderr, /migration timed out after 2s/);
        assert.ok(result.ms < 15000, `stopped within 15 s (took ${result.ms} ms)`);
        assert.equal(containersNamed(NAME), "");
        console.log(`      timed-out run (watchdog) returned after ${result.ms} ms`);
    });

    it("SIGTERM to the script removes the running migration container", async function () {
        let signalled = false;
        const result = await runScript(scriptEnv({ MIGRATION_COMMAND: "/migrate sleep 60" }), ENV_LINES, (pid) => {
            void (async () => {
                for (let i = 0; i < 100; i++) {
                    await sleep(100);
                    if (migrationRunning()) {
                        process.kill(pid, "SIGTERM");
                        signalled = true;
                        return;
                    }
                }
            })();
        });
        assert.ok(signalled, "the container was observed running and the script signalled");
        assert.equal(result.status, 143, result.stderr);
        assert.match(result.stderr, new RegExp(`interrupted: removed the migration container ${NAME}; the live colour was not touched`));
        assert.ok(result.ms < 15000, `returned within 15 s (took ${result.ms} ms)`);
        assert.equal(containersNamed(NAME), "");
    });

    it("refuses bad input before running anything", async function () {
        const missing = await runScript(scriptEnv({ MIGRATION_IMAGE: "" }), ENV_LINES);
        assert.equal(missing.status, 2);
        assert.match(missing.stderr, /MIGRATION_IMAGE is required/);
        const badTimeout = await runScript(scriptEnv({ MIGRATION_TIMEOUT: "ten" }), ENV_LINES);
        assert.equal(badTimeout.status, 2);
        assert.match(badTimeout.stderr, /MIGRATION_TIMEOUT must be a positive whole number/);
        const badName = await runScript(scriptEnv({ MIGRATION_NAME: "bad name" }), ENV_LINES);
        assert.equal(badName.status, 2);
        assert.match(badName.stderr, /not a valid container name/);
    });
});
