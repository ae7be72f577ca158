// host/stop-worker.sh against a real dockerd of the test's own (PrivateDockerd). The "worker" is a
// tiny image made by `docker import` from a static busybox, run like the real one (--init, restart
// unless-stopped, the medusa-deploy.role label): on SIGTERM it finishes its "job" for a given
// number of seconds and exits 0, or ignores SIGTERM altogether.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd, sleep } from "../support/privateDockerd";
import { commandExists, isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun } from "../support/runShellScript";
import { importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";

const SCRIPT = path.resolve(__dirname, "../../host/stop-worker.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/stop-worker");
const IMAGE = "medusa-deploy-test/worker-stub:1";
const OLD = "medusa-test-blue-worker";
const NEXT = "medusa-test-green-worker";

const WORKER_STUB = `#!/bin/sh
# Stands in for a Medusa worker in tests/host/stopWorker.test.ts. /worker <seconds to drain | ignore>
mode=$1
on_term() {
    if [ "$mode" = ignore ]; then
        echo "worker: SIGTERM ignored"
        return
    fi
    echo "worker: SIGTERM, finishing the current job"
    sleep "$mode"
    echo "worker: drained"
    exit 0
}
trap on_term TERM
echo "worker: started"
while :; do
    sleep 1 &
    wait $!
done
`;

const lastLine = (run: ScriptRun) => run.stdout.trim().split("\n").pop() ?? "";

describe("host/stop-worker.sh against a real dockerd", function () {
    this.timeout(180000);
    let dockerd: PrivateDockerd;

    const docker = (args: string[]): string => dockerd.docker(args, { timeoutMs: 60000 }).trim();
    const state = (name: string): string => docker(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name]);
    const exists = (name: string): boolean => docker(["ps", "-a", "-q", "--filter", `name=^/${name}$`]) !== "";
    const removeIfPresent = (name: string) => {
        if (exists(name)) docker(["rm", "-f", name]);
    };
    /** A worker container as components/colourSet.ts declares it (the parts that matter here). */
    function startWorker(name: string, mode: string, role = "worker"): string {
        removeIfPresent(name);
        const label = role === "" ? [] : ["--label", `medusa-deploy.role=${role}`];
        const id = docker(["run", "-d", "--name", name, "--init", "--restart", "unless-stopped", "--network", "none", ...label, IMAGE, "/worker", mode]);
        for (let i = 0; i < 50 && !docker(["logs", name]).includes("worker: started"); i++) execFileSync("sleep", ["0.1"]);
        return id;
    }
    function runScript(env: Record<string, string>, extra: NodeJS.ProcessEnv = {}): Promise<ScriptRun> {
        return runShellScript(SCRIPT, { env: { PATH: process.env.PATH, DOCKER_HOST: dockerd.host, WORKER_NAME: OLD, NEXT_WORKER: NEXT, ...env, ...extra } });
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker"], "apt-get install -y docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined && commandExists("busybox"), "apt-get install -y busybox-static");
        requireCommands(this, ["docker-init"], "the docker.io package installs docker-init (docker run --init)");

        fs.mkdirSync(ROOT, { recursive: true });
        dockerd = new PrivateDockerd({ root: path.join(ROOT, "dockerd") });
        await dockerd.start();

        importBusyboxImage(dockerd, IMAGE, ROOT, { applets: ["sh", "sleep", "echo"], files: { "/worker": { content: WORKER_STUB, mode: 0o755 } } });
    });

    after(async function () {
        if (!dockerd) return;
        await dockerd.shutdown();
    });

    afterEach(function () {
        if (!dockerd) return;
        for (const name of [OLD, NEXT]) removeIfPresent(name);
    });

    it("stops the worker with SIGTERM and lets it finish its job within the drain; the container stays, stopped", async function () {
        const id = startWorker(OLD, "2");
        const result = await runScript({ WORKER_DRAIN_SECONDS: "20" });
        assert.equal(result.status, 0, result.stderr);
        assert.match(lastLine(result), new RegExp(`^result: stopped worker=${OLD} exit=0 seconds=[0-9]+$`));
        assert.ok(result.ms >= 2000 && result.ms < 15000, `waited for the job (2 s) and no longer (took ${result.ms} ms)`);
        const logs = docker(["logs", OLD]);
        assert.match(logs, /worker: SIGTERM, finishing the current job\nworker: drained/, "SIGTERM reached the worker through the container's init");
        assert.equal(state(OLD), "exited 0");
        assert.equal(docker(["inspect", "-f", "{{.Id}}", OLD]), id, "stopped, not removed: the engine removes it");
        await sleep(2000);
        assert.equal(state(OLD), "exited 0", "restart unless-stopped leaves a stopped worker stopped");
        console.log(`      graceful stop took ${result.ms} ms`);
    });

    it("the engine's later delete of the stopped container is harmless: stop answers 304 at once, remove succeeds", async function () {
        const id = startWorker(OLD, "0");
        const result = await runScript({});
        assert.equal(result.status, 0, result.stderr);
        // What the docker provider's delete does (destroyGraceSeconds 30): stop with t=30, then remove with force.
        const socket = dockerd.socket;
        const started = Date.now();
        const stop = execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "-X", "POST", `http://docker/containers/${id}/stop?t=30`], { encoding: "utf8" });
        assert.equal(stop, "304", "an already stopped container: not modified, no error");
        assert.ok(Date.now() - started < 5000, "no 30 s wait");
        const remove = execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "-X", "DELETE", `http://docker/containers/${id}?force=true`], { encoding: "utf8" });
        assert.equal(remove, "204");
        assert.equal(exists(OLD), false);
    });

    it("a worker that ignores SIGTERM is killed when the drain runs out, and the handover goes on", async function () {
        startWorker(OLD, "ignore");
        const result = await runScript({ WORKER_DRAIN_SECONDS: "2" });
        assert.equal(result.status, 0, result.stderr);
        assert.match(lastLine(result), new RegExp(`^result: killed worker=${OLD} seconds=[0-9]+$`));
        assert.match(result.stderr, new RegExp(`${OLD} did not exit within 2s of SIGTERM and was killed`));
        assert.ok(result.ms >= 2000 && result.ms < 15000, `bounded by the drain (took ${result.ms} ms)`);
        assert.match(docker(["logs", OLD]), /worker: SIGTERM ignored/);
        assert.equal(state(OLD), "exited 137");
    });

    it("no worker container (the first deploy): nothing to stop, nothing else touched", async function () {
        const next = startWorker(NEXT, "0");
        const result = await runScript({});
        assert.equal(result.status, 0, result.stderr);
        assert.equal(lastLine(result), `result: absent worker=${OLD}`);
        assert.equal(result.stderr, "");
        assert.equal(state(NEXT), "running 0", "another colour's worker is left alone");
        assert.equal(docker(["inspect", "-f", "{{.Id}}", NEXT]), next);
    });

    it("a worker that already stopped: nothing to stop", async function () {
        startWorker(OLD, "0");
        docker(["stop", "-t", "5", OLD]);
        const result = await runScript({});
        assert.equal(result.status, 0, result.stderr);
        assert.equal(lastLine(result), `result: not-running worker=${OLD} status=exited`);
    });

    it("refuses to stop a container that is not a worker (a wrong name must never stop a server)", async function () {
        const id = startWorker(OLD, "0", "server");
        const result = await runScript({});
        assert.equal(result.status, 3);
        assert.equal(lastLine(result), `result: unchanged worker=${OLD}`);
        assert.match(result.stderr, new RegExp(`${OLD} is not a worker \\(label medusa-deploy.role is 'server', status running\\): refusing to stop it; nothing was stopped`));
        assert.equal(state(OLD), "running 0");
        assert.equal(docker(["inspect", "-f", "{{.Id}}", OLD]), id);

        startWorker(OLD, "0", "");
        const unlabelled = await runScript({});
        assert.equal(unlabelled.status, 3);
        assert.match(unlabelled.stderr, /label medusa-deploy.role is 'unset', status running\): refusing to stop it/);
        assert.equal(state(OLD), "running 0");
    });

    it("a failed stop fails the handover, says the new worker was not started, and leaves the worker as it was", async function () {
        const id = startWorker(OLD, "0");
        const startedAt = docker(["inspect", "-f", "{{.State.StartedAt}}", OLD]);
        // A docker CLI whose `stop` fails (as a daemon error would); everything else is the real CLI.
        const bin = path.join(ROOT, "failing-stop-bin");
        fs.rmSync(bin, { recursive: true, force: true });
        fs.mkdirSync(bin);
        const realDocker = execFileSync("sh", ["-c", "command -v docker"], { encoding: "utf8" }).trim();
        fs.writeFileSync(
            path.join(bin, "docker"),
            `#!/bin/sh\nif [ "$1" = stop ]; then echo "Error response from daemon: cannot stop container: ${OLD}: permission denied" >&2; exit 1; fi\nexec '${realDocker}' "$@"\n`,
            { mode: 0o755 },
        );
        const result = await runScript({}, { PATH: `${bin}:${process.env.PATH}` });
        assert.equal(result.status, 1, result.stdout + result.stderr);
        assert.equal(lastLine(result), `result: failed worker=${OLD} status=running`);
        assert.match(result.stderr, /could not stop medusa-test-blue-worker: docker stop exited 1 after [0-9]+s \(Error response from daemon: cannot stop container: .*permission denied\); it is still running/);
        assert.match(result.stderr, new RegExp(`so the new worker \\(${NEXT}\\) was not started: two workers never run at once`));
        assert.equal(state(OLD), "running 0");
        assert.equal(docker(["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", OLD]), `${id} ${startedAt}`, "the same container, never restarted");
    });

    it("dockerd not answering: nothing is stopped, exit 2", async function () {
        startWorker(OLD, "0");
        const result = await runScript({}, { DOCKER_HOST: `unix://${path.join(ROOT, "no-such.sock")}` });
        assert.equal(result.status, 2);
        assert.match(result.stderr, /dockerd does not answer .*; nothing was stopped/);
        assert.equal(lastLine(result), `result: unchanged worker=${OLD}`);
        assert.equal(state(OLD), "running 0");
    });

    it("refuses bad input before asking docker", async function () {
        const badDrain = await runScript({ WORKER_DRAIN_SECONDS: "-1" });
        assert.equal(badDrain.status, 2);
        assert.match(badDrain.stderr, /WORKER_DRAIN_SECONDS must be a whole number of seconds, got '-1'/);
        const tooLong = await runScript({ WORKER_DRAIN_SECONDS: "86400" });
        assert.equal(tooLong.status, 2);
        assert.match(tooLong.stderr, /at most 3600/);
    });
});
