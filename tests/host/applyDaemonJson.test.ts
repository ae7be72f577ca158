// host/apply-daemon-json.sh against a real dockerd of the test's own (PrivateDockerd). The script's
// reload command is a SIGHUP to that daemon; its restart command stops it and starts it again with
// the same command line, and reports failure when dockerd exits while starting, as
// `systemctl restart docker` does.
import { strict as assert } from "node:assert";
import { spawnSync, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd, sleep, unmountUnder } from "../support/privateDockerd";
import { commandExists, isRoot, requireCommands, requireReal } from "../support/realComponent";
import { applyDaemonJsonEnv, desiredDaemonSettings } from "../../lib/daemonJson";
import { renderBuildkitdToml } from "../../lib/buildkitdToml";
import { runShellScript, ScriptRun } from "../support/runShellScript";

const SCRIPT = path.resolve(__dirname, "../../host/apply-daemon-json.sh");
const ROOT = path.resolve(__dirname, "../../.test-work/apply-daemon-json");
const MIRROR = "https://mirror.medusa-test.invalid";


function runScript(env: NodeJS.ProcessEnv, timeoutMs = 120000): Promise<ScriptRun> {
    return runShellScript(SCRIPT, { env, timeoutMs });
}

// Processes an interrupted run left behind (container shims refer to the exec-root under ROOT), and
// their children (the containers' processes): stopped by pid so ROOT can be removed.
function killLeftoversUnder(root: string): void {
    const processes = fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map((pid) => {
        try {
            const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
            const ppid = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) \S+ /, "").split(" ")[0];
            return { pid: Number(pid), ppid: Number(ppid), cmdline };
        } catch {
            return { pid: Number(pid), ppid: 0, cmdline: "" };
        }
    });
    const leftovers = processes.filter((p) => p.cmdline.includes(root + "/") && p.pid !== process.pid);
    const children = processes.filter((p) => leftovers.some((l) => l.pid === p.ppid));
    for (const p of [...children, ...leftovers]) {
        try {
            process.kill(p.pid, "SIGKILL");
        } catch {
            /* already gone */
        }
    }
}


const lastLine = (text: string): string => text.trim().split("\n").slice(-1)[0];
const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

describe("host/apply-daemon-json.sh against a real dockerd", function () {
    this.timeout(180000);
    let dockerd: PrivateDockerd;
    let reloadMarker: string;
    let restartMarker: string;
    let containerId = "";
    // What a deploy passes: the managed settings plus, here, nothing extra.
    const desired = desiredDaemonSettings({ buildkitKeepStorage: "2GB", logMaxSize: "10m", logMaxFile: 3, extra: {} });

    function scriptEnv(desiredSettings: Record<string, unknown>, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
        return dockerd.env({
            ...applyDaemonJsonEnv(desiredSettings),
            DAEMON_JSON_PATH: dockerd.configFile,
            DOCKER_RELOAD_COMMAND: `kill -HUP "$(cat ${shellQuote(dockerd.pidFile)})" && echo reload >> ${shellQuote(reloadMarker)}`,
            DOCKER_RESTART_COMMAND: `sh ${shellQuote(path.join(dockerd.root, "restart.sh"))}`,
            DOCKER_LOGS_COMMAND: `tail -n 20 ${shellQuote(dockerd.logFile)}`,
            DOCKER_READY_TIMEOUT: "30",
            ...extra,
        });
    }

    function writeRestartScript(): void {
        const q = shellQuote;
        const script = `#!/bin/sh
# Stands in for "systemctl restart docker" for the test's private dockerd.
alive() { s=$(sed 's/^[0-9]* ([^)]*) \\(.\\).*/\\1/' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
echo restart >> ${q(restartMarker)}
pid=$(cat ${q(dockerd.pidFile)} 2>/dev/null)
if [ -n "$pid" ] && alive "$pid"; then
    kill "$pid"
    i=0
    while alive "$pid"; do
        i=$((i + 1)); [ "$i" -eq 300 ] && kill -9 "$pid"
        sleep 0.1
    done
fi
setsid ${dockerd.commandLine().map(q).join(" ")} >> ${q(dockerd.logFile)} 2>&1 < /dev/null &
new=$!
i=0
while [ "$i" -lt 300 ]; do
    alive "$new" || { echo "dockerd exited while starting" >&2; exit 1; }
    docker version >/dev/null 2>&1 && exit 0
    sleep 0.1; i=$((i + 1))
done
echo "dockerd did not answer within 30s" >&2
exit 1
`;
        fs.writeFileSync(path.join(dockerd.root, "restart.sh"), script);
    }

    function clearMarkers(): void {
        fs.rmSync(reloadMarker, { force: true });
        fs.rmSync(restartMarker, { force: true });
    }

    function containerState(): string {
        return dockerd.docker(["inspect", "--format", "{{.Id}} {{.State.Running}} {{.State.Pid}} {{.State.StartedAt}}", containerId]).trim();
    }

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "tar", "busybox", "setsid"], "apt-get install -y docker.io busybox-static tar util-linux");
        requireReal(this, "python3 or jq", commandExists("python3") || commandExists("jq"), "apt-get install -y jq");
        requireReal(this, "root", isRoot(), "run the host tests as root (dockerd needs it)");
        // A daemon left by an interrupted run would hold mounts under ROOT.
        await new PrivateDockerd({ root: ROOT }).stop();
        killLeftoversUnder(ROOT);
        await sleep(500);
        unmountUnder(ROOT);
        fs.rmSync(ROOT, { recursive: true, force: true });
        dockerd = new PrivateDockerd({
            root: ROOT,
            // Keys the deploy does not manage and that the harness does not pass as flags.
            daemonJson: { "registry-mirrors": [MIRROR], "log-driver": "json-file", dns: ["192.0.2.53"] },
        });
        reloadMarker = path.join(ROOT, "reloaded.marker");
        restartMarker = path.join(ROOT, "restarted.marker");
        writeRestartScript();
        await dockerd.start();

        // A tiny image from the host's static busybox: nothing can be pulled here.
        const rootfs = path.join(ROOT, "rootfs");
        fs.mkdirSync(path.join(rootfs, "bin"), { recursive: true });
        fs.copyFileSync(execFileSync("sh", ["-c", "command -v busybox"], { encoding: "utf8" }).trim(), path.join(rootfs, "bin/busybox"));
        fs.chmodSync(path.join(rootfs, "bin/busybox"), 0o755);
        execFileSync("tar", ["-C", rootfs, "-cf", path.join(ROOT, "rootfs.tar"), "."]);
        dockerd.docker(["import", path.join(ROOT, "rootfs.tar"), "medusa-test/busybox:1"]);
        containerId = dockerd.docker(["run", "-d", "--network", "none", "medusa-test/busybox:1", "/bin/busybox", "sleep", "3600"]).trim();
    });

    after(async function () {
        if (!dockerd) return;
        // Remove the container while dockerd runs, so no shim outlives the test (live-restore is on).
        try {
            if (!dockerd.answers()) await dockerd.start();
            if (containerId) dockerd.docker(["rm", "-f", containerId], { timeoutMs: 30000 });
        } catch (error) {
            console.warn(`      could not remove the test container: ${error}`);
        }
        await dockerd.stop();
        await sleep(500);
        killLeftoversUnder(ROOT);
        unmountUnder(ROOT);
    });

    it("merges into a file with unrelated keys, restarts dockerd with it, and a running container survives", async function () {
        assert.equal(dockerd.docker(["info", "--format", "{{.LiveRestoreEnabled}}"]).trim(), "false");
        const originalBytes = fs.readFileSync(dockerd.configFile);
        const pidBefore = dockerd.pid();
        const containerBefore = containerState();
        clearMarkers();

        const run = await runScript(scriptEnv(desired));
        console.log(`      apply needing live-restore reload + restart took ${run.ms} ms`);
        assert.equal(run.status, 0, `script failed:\n${run.stdout}\n${run.stderr}`);
        assert.equal(lastLine(run.stdout), "result: restarted");

        const written = JSON.parse(fs.readFileSync(dockerd.configFile, "utf8"));
        assert.deepEqual(written, {
            bridge: "none",
            iptables: false,
            "registry-mirrors": [MIRROR],
            "log-driver": "json-file",
            dns: ["192.0.2.53"],
            ...desired,
        });
        assert.deepEqual(fs.readFileSync(`${dockerd.configFile}.bak-medusa-deploy`), originalBytes, "backup holds the original bytes");
        assert.ok(fs.existsSync(reloadMarker), "live-restore was switched on with a reload first");
        assert.ok(fs.existsSync(restartMarker), "dockerd was restarted");
        assert.notEqual(dockerd.pid(), pidBefore, "a new dockerd process runs");

        const info = JSON.parse(dockerd.docker(["info", "--format", "{{json .}}"])) as {
            LiveRestoreEnabled: boolean;
            RegistryConfig: { Mirrors: string[] };
        };
        assert.equal(info.LiveRestoreEnabled, true);
        assert.ok(info.RegistryConfig.Mirrors.some((m) => m.startsWith(MIRROR)), `mirror kept: ${info.RegistryConfig.Mirrors}`);
        // Same id, still running, same process, same start time: it was never restarted.
        assert.equal(containerState(), containerBefore);
        assert.match(containerBefore, / true /);
        console.log(`      container ${containerId.slice(0, 12)} kept running across the restart (same pid and StartedAt)`);
    });

    it("changes nothing on a second apply with the same inputs: no reload, no restart, same bytes", async function () {
        const before = fs.readFileSync(dockerd.configFile);
        const statBefore = fs.statSync(dockerd.configFile);
        const backupStatBefore = fs.statSync(`${dockerd.configFile}.bak-medusa-deploy`);
        const pidBefore = dockerd.pid();
        clearMarkers();

        const run = await runScript(scriptEnv(desired));
        assert.equal(run.status, 0, `script failed:\n${run.stdout}\n${run.stderr}`);
        assert.match(run.stdout, /daemon\.json unchanged/);
        assert.equal(lastLine(run.stdout), "result: unchanged");
        assert.deepEqual(fs.readFileSync(dockerd.configFile), before);
        const statAfter = fs.statSync(dockerd.configFile);
        assert.equal(statAfter.mtimeMs, statBefore.mtimeMs);
        assert.equal(statAfter.ino, statBefore.ino);
        assert.equal(fs.statSync(`${dockerd.configFile}.bak-medusa-deploy`).mtimeMs, backupStatBefore.mtimeMs, "no backup churn");
        assert.equal(dockerd.pid(), pidBefore);
        assert.ok(!fs.existsSync(reloadMarker), "no reload ran");
        assert.ok(!fs.existsSync(restartMarker), "no restart ran");
    });

    it("gives the same result with jq when python3 is absent", async function () {
        if (!commandExists("jq")) return requireReal(this, "jq", false, "apt-get install -y jq");
        // A PATH holding every command of the system folders except python.
        const bin = path.join(ROOT, "bin-without-python");
        fs.mkdirSync(bin, { recursive: true });
        for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
            if (!fs.existsSync(dir)) continue;
            for (const name of fs.readdirSync(dir)) {
                if (/^(python|pydoc)/.test(name) || fs.existsSync(path.join(bin, name))) continue;
                fs.symlinkSync(path.join(dir, name), path.join(bin, name));
            }
        }
        const withoutPython = { PATH: bin };
        assert.throws(() => execFileSync("sh", ["-c", "command -v python3"], { env: { PATH: bin }, stdio: "ignore" }));

        // Same canonical bytes from both tools for a change with nested merges and non-ASCII text.
        const change = { ...desired, labels: ["shop=é"], "log-opts": { "max-size": "20m" }, "max-concurrent-downloads": 4 };
        const dry = { DAEMON_JSON_DRY_RUN: "1" };
        const viaPython = await runScript(scriptEnv(change, dry));
        const viaJq = await runScript(scriptEnv(change, { ...dry, ...withoutPython }));
        assert.equal(viaPython.status, 0, viaPython.stderr);
        assert.equal(viaJq.status, 0, viaJq.stderr);
        assert.match(viaPython.stderr, /dry run \(python3\): plan: restart; changed keys: labels log-opts max-concurrent-downloads/);
        assert.match(viaJq.stderr, /dry run \(jq\): plan: restart; changed keys: labels log-opts max-concurrent-downloads/);
        assert.equal(viaJq.stdout, viaPython.stdout);
        assert.equal(JSON.parse(viaJq.stdout)["log-opts"]["max-file"], "3", "nested objects merge, not replace");

        // And the jq path also sees the current file as up to date.
        const before = fs.readFileSync(dockerd.configFile);
        clearMarkers();
        const run = await runScript(scriptEnv(desired, withoutPython));
        assert.equal(run.status, 0, run.stderr);
        assert.equal(lastLine(run.stdout), "result: unchanged");
        assert.deepEqual(fs.readFileSync(dockerd.configFile), before);
        assert.ok(!fs.existsSync(reloadMarker) && !fs.existsSync(restartMarker));
    });

    it("applies a change of reloadable keys only with a reload, without restarting dockerd", async function () {
        const pidBefore = dockerd.pid();
        clearMarkers();
        const run = await runScript(scriptEnv({ ...desired, labels: ["medusa-test=reloaded"] }));
        assert.equal(run.status, 0, `script failed:\n${run.stdout}\n${run.stderr}`);
        assert.equal(lastLine(run.stdout), "result: reloaded");
        assert.ok(fs.existsSync(reloadMarker));
        assert.ok(!fs.existsSync(restartMarker));
        assert.equal(dockerd.pid(), pidBefore);
        assert.match(dockerd.docker(["info", "--format", "{{json .Labels}}"]), /medusa-test=reloaded/);
    });

    it("rolls back a file dockerd refuses: previous bytes restored, dockerd running, its error reported", async function () {
        const before = fs.readFileSync(dockerd.configFile);
        const containerBefore = containerState();
        clearMarkers();
        const run = await runScript(scriptEnv({ ...desired, "no-such-option": true }));
        assert.notEqual(run.status, 0);
        assert.equal(lastLine(run.stdout), "result: rolled back");
        console.log(run.stderr.split("\n").filter((line) => /^apply-daemon-json: |directives/.test(line)).map((line) => `      | ${line.slice(0, 240)}`).join("\n"));
        assert.match(run.stderr, /the following directives don't match any configuration option/);
        assert.match(run.stderr, /previous .*daemon\.json was restored byte for byte/);
        assert.match(run.stderr, /dockerd is running/);
        assert.deepEqual(fs.readFileSync(dockerd.configFile), before);
        assert.ok(dockerd.answers(), "dockerd answers after the rollback");
        assert.equal(containerState(), containerBefore, "the container kept running through both restarts");
    });

    it("leaves a malformed file untouched and does not reload or restart", async function () {
        const valid = fs.readFileSync(dockerd.configFile);
        // What the seed's `tee -a` produced: a second object appended to the first.
        const malformed = Buffer.concat([valid, Buffer.from('{"live-restore": true}\n')]);
        fs.writeFileSync(dockerd.configFile, malformed);
        const pidBefore = dockerd.pid();
        clearMarkers();
        try {
            const run = await runScript(scriptEnv(desired));
            assert.notEqual(run.status, 0);
            assert.equal(lastLine(run.stdout), "result: failed");
            assert.match(run.stderr, /is not a valid daemon\.json/);
            assert.match(run.stderr, /left untouched and dockerd was not reloaded or restarted/);
            assert.deepEqual(fs.readFileSync(dockerd.configFile), malformed);
            assert.equal(dockerd.pid(), pidBefore);
            assert.ok(!fs.existsSync(reloadMarker) && !fs.existsSync(restartMarker));
        } finally {
            fs.writeFileSync(dockerd.configFile, valid);
        }
    });

    it("treats an absent file as {} (dry run)", async function () {
        const absent = path.join(ROOT, "absent", "daemon.json");
        const run = await runScript(scriptEnv(desired, { DAEMON_JSON_PATH: absent, DAEMON_JSON_DRY_RUN: "1" }));
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(JSON.parse(run.stdout), desired);
        assert.ok(!fs.existsSync(absent));
    });
});

// The builder cannot be created on this machine (no buildx, no moby/buildkit image): only the parts
// that run without them are exercised here.
describe("host/ensure-buildkit-builder.sh (without buildx)", function () {
    const BUILDER_SCRIPT = path.resolve(__dirname, "../../host/ensure-buildkit-builder.sh");
    const toml = renderBuildkitdToml({ keepStorage: "20GB" });

    function runBuilderScript(env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
        const result = spawnSync("/bin/sh", [BUILDER_SCRIPT], { env: { HOME: ROOT, ...env }, encoding: "utf8", timeout: 30000 });
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    }

    it("is valid POSIX sh", function () {
        execFileSync("/bin/sh", ["-n", BUILDER_SCRIPT]);
        execFileSync("/bin/sh", ["-n", SCRIPT]);
    });

    it("names what to install when docker buildx is missing, and changes nothing", function () {
        // A docker config folder of its own has no cli-plugins/, so the real docker CLI has no buildx
        // (the toolchain installs ours in ~/.docker/cli-plugins) unless one is installed system-wide.
        const dockerConfig = path.join(ROOT, "docker-config-without-plugins");
        fs.mkdirSync(dockerConfig, { recursive: true });
        const buildxWorks = spawnSync("docker", ["buildx", "version"], { stdio: "ignore", env: { ...process.env, DOCKER_CONFIG: dockerConfig } }).status === 0;
        requireReal(this, "a docker CLI without buildx", !buildxWorks, "docker buildx is installed system-wide here, so its absence cannot be shown for real");
        const stateDir = path.join(ROOT, "builder-state");
        const run = runBuilderScript({
            PATH: process.env.PATH ?? "",
            DOCKER_CONFIG: dockerConfig,
            BUILDER_NAME: "medusa-test",
            BUILDKITD_TOML: toml,
            BUILDER_STATE_DIR: stateDir,
        });
        assert.equal(run.status, 1);
        assert.match(run.stderr, /'docker buildx' is not available: install the Docker Buildx plugin \(docker-buildx-plugin/);
        assert.match(run.stderr, /Nothing was changed/);
        assert.equal(lastLine(run.stdout), "result: failed");
        assert.ok(!fs.existsSync(stateDir));
    });

    it("says the docker CLI itself is missing when it is not on PATH", function () {
        const bin = path.join(ROOT, "bin-without-docker");
        fs.mkdirSync(bin, { recursive: true });
        for (const name of ["sh", "cat", "mkdir", "sha256sum", "cut", "mktemp", "rm"]) {
            const target = execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
            if (!fs.existsSync(path.join(bin, name))) fs.symlinkSync(target, path.join(bin, name));
        }
        const run = runBuilderScript({ PATH: bin, BUILDER_NAME: "medusa-test", BUILDKITD_TOML: toml });
        assert.equal(run.status, 1);
        assert.match(run.stderr, /the docker CLI is not installed/);
    });

    it("rejects missing or unsafe inputs before touching docker", function () {
        const env = { PATH: process.env.PATH ?? "" };
        assert.match(runBuilderScript({ ...env, BUILDKITD_TOML: toml }).stderr, /BUILDER_NAME is empty/);
        assert.match(runBuilderScript({ ...env, BUILDER_NAME: "a b", BUILDKITD_TOML: toml }).stderr, /may only hold letters/);
        assert.match(runBuilderScript({ ...env, BUILDER_NAME: "medusa-test" }).stderr, /BUILDKITD_TOML is empty/);
    });
});
