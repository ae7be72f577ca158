// host/health-gate.sh against a real dockerd of the test's own (PrivateDockerd). The "server" is a
// tiny image made by `docker import` from a static busybox, run like the real one (--init, a Docker
// health check, restart unless-stopped): it logs fifty lines, then turns healthy after a while,
// never does, leaks its secrets into its log and its health check's output, exits, or crash-loops.
import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd } from "../support/privateDockerd";
import { commandExists, isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";
import { importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";

const SCRIPT = path.resolve(__dirname, "../../host/health-gate.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/health-gate");
const IMAGE = "medusa-deploy-test/server-stub:1";
const NAME = "medusa-test-green-server";

// Unique per run, so finding one anywhere can only mean this test's value leaked.
const PASSWORD = `pw-${randomBytes(8).toString("hex")}`;
const DATABASE_URL = `postgres://medusa:${PASSWORD}@db:5432/medusa`;
const JWT_SECRET = `jwt-${randomBytes(12).toString("hex")}`;
const ENV_LINES = `# the colour's environment\nDATABASE_URL=${DATABASE_URL}\nJWT_SECRET=${JWT_SECRET}\nSTORE_CORS=http://localhost:8000\n`;
const SECRETS = [DATABASE_URL, PASSWORD, JWT_SECRET];

const SERVER_STUB = `#!/bin/sh
# Stands in for a Medusa server in tests/host/healthGate.test.ts. /server <mode> [seconds | code]
mode=$1
i=1
while [ "$i" -le 50 ]; do
    echo "server: log line $i"
    i=$((i + 1))
done
case "$mode" in
ready-after)
    sleep "$2"
    touch /tmp/ready
    echo "server: ready"
    ;;
leak)
    password=\${DATABASE_URL#*://*:}
    password=\${password%%@*}
    echo "server: connecting to $DATABASE_URL"
    echo "server: password authentication failed for \\"$password\\""
    echo "server: signing sessions with JWT_SECRET=$JWT_SECRET (STORE_CORS=$STORE_CORS)"
    ;;
exit)
    echo "server: fatal: cannot load medusa-config"
    exit "$2"
    ;;
crash)
    echo "server: crashing"
    sleep 0.2
    exit 1
    ;;
esac
while :; do
    sleep 1 &
    wait $!
done
`;

const lastLine = (run: ScriptRun) => run.stdout.trim().split("\n").pop() ?? "";
const result = (run: ScriptRun): Record<string, string> => {
    const [word, ...pairs] = lastLine(run).replace(/^result: /, "").split(" ");
    return { result: word, ...Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)])) };
};
const assertNoSecret = (run: ScriptRun) => {
    for (const secret of SECRETS) assert.ok(!(run.stdout + run.stderr).includes(secret), `a secret value leaked: ${run.stdout}${run.stderr}`);
};

describe("host/health-gate.sh against a real dockerd", function () {
    this.timeout(240000);
    let dockerd: PrivateDockerd;

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 60000 }).trim();
    const removeIfPresent = (name: string) => {
        if (docker(["ps", "-a", "-q", "--filter", `name=^/${name}$`]) !== "") docker(["rm", "-f", name]);
    };
    /** A server container as components/colourSet.ts declares it (the parts that matter here), with the colour's env. */
    function startServer(mode: string[], health: string[], restart = "unless-stopped"): string {
        removeIfPresent(NAME);
        // (A file here: execFileSync's stdin is a socket, which /dev/stdin cannot reopen.)
        const envFile = path.join(ROOT, "server.env");
        fs.writeFileSync(envFile, ENV_LINES, { mode: 0o600 });
        return docker(["run", "-d", "--name", NAME, "--init", "--restart", restart, "--network", "none", "--env-file", envFile, "--label", "medusa-deploy.role=server", ...health, IMAGE, "/server", ...mode]);
    }
    const checkEvery = (cmd: string, interval = "1s", retries = "2") => ["--health-cmd", cmd, "--health-interval", interval, "--health-timeout", "2s", "--health-retries", retries, "--health-start-period", "0s"];
    function gate(env: Record<string, string>, input: string | undefined = ENV_LINES, extra: NodeJS.ProcessEnv = {}): Promise<ScriptRun> {
        return runShellScript(SCRIPT, { env: { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, GATE_CONTAINER: NAME, ...env, ...extra }, input, timeoutMs: 120000 });
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker"], "apt-get install -y docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined && commandExists("busybox"), "apt-get install -y busybox-static");
        requireCommands(this, ["docker-init"], "the docker.io package installs docker-init (docker run --init)");

        fs.mkdirSync(ROOT, { recursive: true });
        dockerd = new PrivateDockerd({ root: path.join(ROOT, "dockerd") });
        await dockerd.start();

        importBusyboxImage(dockerd, IMAGE, ROOT, {
            applets: ["sh", "sleep", "echo", "test", "touch", "["],
            dirs: ["/tmp"],
            files: { "/server": { content: SERVER_STUB, mode: 0o755 } },
        });
    });

    after(async function () {
        if (!dockerd) return;
        await dockerd.shutdown();
    });

    afterEach(function () {
        if (!dockerd) return;
        removeIfPresent(NAME);
    });

    it("a server that turns healthy passes, inspected by the id the deploy created", async function () {
        const id = startServer(["ready-after", "2"], checkEvery("test -f /tmp/ready"));
        const run = await gate({ GATE_CONTAINER_ID: id, GATE_TIMEOUT: "60" });
        assert.equal(run.status, 0, run.stdout + run.stderr);
        assert.match(lastLine(run), new RegExp(`^result: healthy container=${NAME} seconds=[0-9]+$`));
        assert.match(run.stdout, new RegExp(`^gating ${NAME}: waiting up to 60s`, "m"));
        assert.equal(run.stderr, "");
        assert.ok(run.ms >= 2000 && run.ms < 20000, `waited for health (took ${run.ms} ms)`);
        console.log(`      healthy after ${run.ms} ms (the stub is ready after 2 s, checked every 1 s)`);

        const again = await gate({ GATE_CONTAINER_ID: id, GATE_TIMEOUT: "60" });
        assert.equal(again.status, 0, "a healthy server passes at once");
        assert.ok(again.ms < 5000, `took ${again.ms} ms`);
    });

    it("a server that turns unhealthy fails within a couple of seconds of Docker saying so, quoting its log tail with the secrets masked", async function () {
        // What Docker says, as it says it: its health_status events, with their times.
        const events: ChildProcess = spawn("docker", ["events", "--filter", "event=health_status", "--format", "{{.Status}} {{.TimeNano}}"], { env: dockerd.env(), stdio: ["ignore", "pipe", "ignore"] });
        let said = "";
        events.stdout?.on("data", (chunk: Buffer) => (said += chunk.toString()));
        try {
            await new Promise((resolve) => setTimeout(resolve, 500));
            const id = startServer(["leak"], checkEvery('echo "probe: token $JWT_SECRET was rejected"; exit 1'));
            const run = await gate({ GATE_CONTAINER_ID: id, GATE_TIMEOUT: "120" });
            const failedAt = Date.now();
            await new Promise((resolve) => setTimeout(resolve, 300));
            assert.equal(run.status, 1, run.stdout + run.stderr);
            const r = result(run);
            assert.deepEqual([r.result, r.container, r.reason, r.status, r.health, r.restarts], ["failed", NAME, "unhealthy", "running", "unhealthy", "0"]);
            assert.match(run.stderr, new RegExp(`${NAME} is unhealthy: Docker's health check failed 2 times in a row \\(after [0-9]+s\\)\\. No traffic was moved to it: traffic stays on the live colour\\.`));
            assert.match(run.stderr, /The container is stopped, not removed, for inspection .*the next `pulumi up` replaces or gates it again/);
            assert.match(docker(["inspect", "--format", "{{.State.Status}}", NAME]), /^exited$/, "the unhealthy container is still running");
            // The last health check's output and the log's tail, masked.
            assert.match(run.stderr, /last health check \(exit 1\):\n {4}probe: token \[secret\] was rejected\n/);
            assert.match(run.stderr, /last 40 lines of its log \(secret values masked\):\n/);
            assert.match(run.stderr, /^ {4}server: connecting to \[secret\]$/m);
            assert.match(run.stderr, /^ {4}server: password authentication failed for "\[secret\]"$/m);
            assert.match(run.stderr, /^ {4}server: signing sessions with JWT_SECRET=\[secret\] \(STORE_CORS=http:\/\/localhost:8000\)$/m, "a plain value stays readable");
            assert.match(run.stderr, /^ {4}server: log line 50$/m);
            assert.match(run.stderr, /^ {4}server: log line 14$/m, "40 lines: 14..50 and the three leaks");
            assert.doesNotMatch(run.stderr, /^ {4}server: log line 13$/m, "only the tail");
            assertNoSecret(run);

            const unhealthyAt = said
                .split("\n")
                .map((line) => /^health_status: unhealthy ([0-9]+)$/.exec(line.trim()))
                .find((m) => m !== null);
            assert.ok(unhealthyAt, `Docker said unhealthy: ${JSON.stringify(said)}`);
            const lag = failedAt - Number(BigInt(unhealthyAt[1]) / 1000000n);
            console.log(`      Docker said unhealthy; the gate had failed ${lag} ms later (whole run ${run.ms} ms, timeout 120 s)`);
            assert.ok(lag >= 0 && lag < 3000, `failed ${lag} ms after Docker said unhealthy`);
            assert.ok(run.ms < 15000, `not the timeout: ${run.ms} ms`);

            // A failed gate records nothing, so the next `up` runs it again: it fails again, at once
            // (the first gate stopped the container).
            const again = await gate({ GATE_CONTAINER_ID: id, GATE_TIMEOUT: "120" });
            assert.equal(again.status, 1);
            assert.equal(result(again).reason, "exited");
            assert.ok(again.ms < 5000, `the second gate failed after ${again.ms} ms`);
            assertNoSecret(again);
        } finally {
            events.kill();
        }
    });

    it("a server whose process exits fails at once with its exit code and log", async function () {
        startServer(["exit", "3"], checkEvery("test -f /tmp/ready"), "no");
        const run = await gate({ GATE_TIMEOUT: "120" });
        assert.equal(run.status, 1, run.stdout + run.stderr);
        const r = result(run);
        assert.deepEqual([r.reason, r.status, r.exit], ["exited", "exited", "3"]);
        assert.match(run.stderr, new RegExp(`${NAME} exited with code 3 before it was healthy`));
        assert.match(run.stderr, /traffic stays on the live colour/);
        assert.match(run.stderr, /^ {4}server: fatal: cannot load medusa-config$/m);
        assert.ok(run.ms < 8000, `at once, not at the timeout (${run.ms} ms)`);
        console.log(`      exited: failed after ${run.ms} ms`);
    });

    it("a crash-looping server (restart unless-stopped) fails at once", async function () {
        startServer(["crash"], checkEvery("test -f /tmp/ready"));
        const run = await gate({ GATE_TIMEOUT: "120" });
        assert.equal(run.status, 1, run.stdout + run.stderr);
        const r = result(run);
        assert.ok(["restarting", "crash-loop"].includes(r.reason), lastLine(run));
        // Caught restarting, Docker still shows the crash's exit code; running again, it shows 0.
        if (r.reason === "restarting") assert.equal(r.exit, "1");
        else assert.ok(Number(r.restarts) > 0, lastLine(run));
        assert.match(run.stderr, /a crash loop/);
        assert.match(run.stderr, /^ {4}server: crashing$/m);
        assert.ok(run.ms < 20000, `at once, not at the timeout (${run.ms} ms)`);
        console.log(`      crash loop (${r.reason}, restarts=${r.restarts}): failed after ${run.ms} ms`);
        // Stopped, not removed: no more restarts on the host, its log still readable.
        const restarts = () => docker(["inspect", "--format", "{{.State.Status}} {{.RestartCount}}", NAME]);
        const stopped = restarts();
        assert.match(stopped, /^exited /, `the crash-looping container was left running: ${stopped}`);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        assert.equal(restarts(), stopped, "the stopped container restarted again");
        assert.match(docker(["logs", NAME]), /crashing/);
    });

    it("a server still starting at the timeout fails with exit 124", async function () {
        startServer(["ready-after", "600"], checkEvery("test -f /tmp/ready", "60s"));
        const run = await gate({ GATE_TIMEOUT: "2" });
        assert.equal(run.status, 124, run.stdout + run.stderr);
        const r = result(run);
        assert.deepEqual([r.reason, r.status, r.health], ["timeout", "running", "starting"]);
        assert.match(run.stderr, new RegExp(`${NAME} is not healthy after 2s \\(GATE_TIMEOUT; still running, health starting\\)`));
        assert.match(run.stderr, /^ {4}server: log line 50$/m);
        assert.ok(run.ms >= 2000 && run.ms < 8000, `waited the timeout, and no longer (${run.ms} ms)`);
    });

    it("a container without a health check cannot be gated: clear error, exit 2", async function () {
        startServer(["ready-after", "0"], []);
        const run = await gate({});
        assert.equal(run.status, 2, run.stdout + run.stderr);
        assert.equal(lastLine(run), `result: refused container=${NAME} reason=no-healthcheck`);
        assert.match(run.stderr, new RegExp(`${NAME} has no health check, so Docker can never call it healthy .*; nothing was gated\\. No traffic was moved to it: traffic stays on the live colour\\.`));
        assert.ok(run.ms < 5000, `at once (${run.ms} ms)`);

        startServer(["ready-after", "0"], ["--no-healthcheck"]);
        const off = await gate({});
        assert.equal(off.status, 2, off.stdout + off.stderr);
        assert.equal(lastLine(off), `result: refused container=${NAME} reason=no-healthcheck`);
        assert.match(off.stderr, new RegExp(`${NAME} has its health check turned off \\(NONE\\)`));
    });

    it("no such container (or not the id the deploy created): exit 2", async function () {
        const run = await gate({});
        assert.equal(run.status, 2);
        assert.equal(lastLine(run), `result: refused container=${NAME} reason=absent`);
        assert.match(run.stderr, new RegExp(`there is no container named ${NAME}; nothing was gated`));
        startServer(["ready-after", "0"], checkEvery("true"));
        const other = await gate({ GATE_CONTAINER_ID: "0123456789ab" });
        assert.equal(other.status, 2);
        assert.match(other.stderr, new RegExp(`there is no container with id 0123456789ab named ${NAME}`));
    });

    it("refuses bad input before it asks docker anything, and when dockerd does not answer", async function () {
        const cases: Array<[Record<string, string>, RegExp, string]> = [
            [{ GATE_CONTAINER: "" }, /GATE_CONTAINER is required/, "none"],
            [{ GATE_CONTAINER: "bad name" }, /GATE_CONTAINER 'bad name' is not a valid container name/, "invalid"],
            [{ GATE_TIMEOUT: "0" }, /GATE_TIMEOUT must be a positive whole number of seconds, got '0'/, NAME],
            [{ GATE_TIMEOUT: "5s" }, /GATE_TIMEOUT must be a positive whole number of seconds, got '5s'/, NAME],
            [{ GATE_TIMEOUT: "100000" }, /GATE_TIMEOUT must be at most 86400/, NAME],
            [{ GATE_LOG_LINES: "-3" }, /GATE_LOG_LINES must be a positive whole number/, NAME],
            [{ GATE_CONTAINER_ID: "xyz" }, /GATE_CONTAINER_ID 'xyz' is not a container id/, NAME],
            [{ GATE_CONTAINER_ID: "abc" }, /GATE_CONTAINER_ID 'abc' is not a container id \(12 to 64 hexadecimal digits\)/, NAME],
        ];
        for (const [env, message, shown] of cases) {
            const run = await gate(env, undefined, { DOCKER_HOST: "unix:///nonexistent.sock" });
            assert.equal(run.status, 2, `${JSON.stringify(env)}: ${run.stderr}`);
            assert.match(run.stderr, message);
            assert.match(run.stderr, /nothing was gated/);
            assert.equal(lastLine(run), `result: refused container=${shown} reason=bad-input`);
        }
        const unreachable = await gate({}, ENV_LINES, { DOCKER_HOST: `unix://${path.join(ROOT, "no-such.sock")}` });
        assert.equal(unreachable.status, 2);
        assert.match(unreachable.stderr, /dockerd does not answer/);
        assert.equal(lastLine(unreachable), `result: refused container=${NAME} reason=docker-unreachable`);
    });
});
