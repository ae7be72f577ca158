// The stand-in command plugin (tools/standin/command) on the real engine: the Pulumi CLI built by
// tools/toolchain.sh runs tests/fixtures/engine-command, whose @pulumi/command resources the
// engine sends to the installed plugin resource-command-v1.2.1. Local commands run on this
// machine; remote ones over ssh to a private sshd on loopback with its own host key.
import { strict as assert } from "node:assert";
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { commandExists, requireReal } from "../support/realComponent";
import { EngineStack, loadToolchain, PROJECT_DIR, runStack, StackRun, stackOutputs, Toolchain } from "../support/toolchain";
import { freePort } from "../support/haproxyEdge";

const WORK = path.join(PROJECT_DIR, ".test-work/engine-command", String(process.pid));
const FIXTURE = path.join(PROJECT_DIR, "tests/fixtures/engine-command");
const STATE = path.join(WORK, "state");
const SSHD = "/usr/sbin/sshd";

interface StateResource {
    urn: string;
    type: string;
    id?: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
}

function stateResources(stack: string): StateResource[] {
    const file = path.join(STATE, ".pulumi/stacks/engine-command", `${stack}.json`);
    const state = JSON.parse(fs.readFileSync(file, "utf8")) as { checkpoint: { latest?: { resources?: StateResource[] } } };
    return state.checkpoint.latest?.resources ?? [];
}

/** Every file of the file backend (current state, backups, history) that contains text. */
function stateFilesContaining(text: string): string[] {
    const hits: string[] = [];
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const file = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(file);
            else if (fs.readFileSync(file, "utf8").includes(text)) hits.push(path.relative(STATE, file));
        }
    };
    walk(STATE);
    return hits;
}

const isSecretValue = (value: unknown) =>
    typeof value === "object" && value !== null && (value as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === "1b47061264138c4ac30d75fd1eb44270";


function keygen(file: string): { privateKey: string; publicKey: string } {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", path.basename(file), "-f", file]);
    return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(`${file}.pub`, "utf8").trim() };
}

describe("the command plugin stand-in on the real engine (tools/standin/command, @pulumi/command 1.2.1)", function () {
    this.timeout(120000);
    let toolchain: Toolchain;
    const timings: string[] = [];

    async function run(target: EngineStack, args: string[]): Promise<StackRun> {
        const result = await runStack(toolchain, target, args, 90000);
        timings.push(`${target.stack} ${args.join(" ")}: ${(result.ms / 1000).toFixed(1)} s`);
        return result;
    }

    before(function () {
        const loaded = loadToolchain();
        requireReal(this, "the engine toolchain", loaded.toolchain !== undefined, loaded.reason ?? "");
        toolchain = loaded.toolchain as Toolchain;
        const installed = path.join(toolchain.env.PULUMI_HOME, "plugins/resource-command-v1.2.1/pulumi-resource-command");
        const isStandin = fs.existsSync(installed) && fs.readFileSync(installed, "utf8").includes("STAND-IN");
        requireReal(this, `the stand-in command plugin 1.2.1 at ${installed}`, isStandin, "sh tools/standin/command/install.sh");
        fs.mkdirSync(WORK, { recursive: true });
    });

    after(() => {
        if (timings.length > 0) console.log(`      engine runs: ${timings.join("; ")}`);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    describe("local.Command", () => {
        const runLog = path.join(WORK, "run.log");
        const secret = `stdin-secret-${crypto.randomBytes(8).toString("hex")}`;
        const local = (settings: Record<string, string> = {}): EngineStack => ({
            projectDir: FIXTURE,
            stack: "local",
            stateDir: STATE,
            env: {
                ENGINE_COMMAND_SCENARIO: "local",
                ENGINE_COMMAND_VERSION: "v1",
                ENGINE_COMMAND_TRIGGER: "t1",
                ENGINE_COMMAND_RUN_LOG: runLog,
                ENGINE_COMMAND_SECRET: secret,
                ...settings,
            },
        });
        const ran = () => (fs.existsSync(runLog) ? fs.readFileSync(runLog, "utf8").trim().split("\n") : []);
        const greetId = () => stateResources("local").find((r) => r.urn.endsWith("::greet"))?.id;

        it("up runs create: stdout reads back, output is logged; a secret stdin stays secret in the state and never shows", async () => {
            const up = await run(local(), ["up"]);
            assert.equal(up.status, 0, `pulumi up failed:\n${up.output}`);
            const outputs = stackOutputs(toolchain, local());
            assert.equal(outputs.stdout, "hello from v1");
            assert.equal(outputs.hash, crypto.createHash("sha256").update(secret).digest("hex"), "the command did not get the secret on stdin");
            assert.deepEqual(ran(), ["create v1 prev=[]"]);
            assert.match(up.output, /greet created .*hello from v1/, "logging (default: both streams) did not reach the engine's display");

            assert.ok(!up.output.includes(secret), "the secret stdin appeared in the up's output");
            assert.deepEqual(stateFilesContaining(secret), [], "the secret stdin is in plain text in the state");
            const hashed = stateResources("local").find((r) => r.urn.endsWith("::hashed"));
            assert.ok(isSecretValue(hashed?.inputs?.stdin) && isSecretValue(hashed?.outputs?.stdin), `stdin is not a secret in the state: ${JSON.stringify(hashed)}`);
        });

        it("a second up with nothing changed reports no changes and runs nothing", async () => {
            const again = await run(local(), ["up", "--expect-no-changes"]);
            assert.equal(again.status, 0, `a second up reported changes or failed:\n${again.output}`);
            assert.deepEqual(ran(), ["create v1 prev=[]"]);
        });

        it("a changed trigger replaces: the replacement's create runs, then the old one's delete with its stdout", async () => {
            const before = greetId();
            const up = await run(local({ ENGINE_COMMAND_TRIGGER: "t2" }), ["up"]);
            assert.equal(up.status, 0, `pulumi up failed:\n${up.output}`);
            assert.match(up.output, /"replace":1/);
            // Create-before-delete, the engine's default: @pulumi/command sets no deleteBeforeReplace.
            assert.deepEqual(ran().slice(1), ["create v1 prev=[]", "delete prev=[hello from v1]"]);
            assert.notEqual(greetId(), before, "a replaced command keeps its id");
        });

        it("a changed create updates in place: create runs again with the previous stdout in PULUMI_COMMAND_STDOUT", async () => {
            const before = greetId();
            const up = await run(local({ ENGINE_COMMAND_TRIGGER: "t2", ENGINE_COMMAND_VERSION: "v2" }), ["up"]);
            assert.equal(up.status, 0, `pulumi up failed:\n${up.output}`);
            assert.match(up.output, /"update":1/);
            assert.deepEqual(ran().slice(3), ["create v2 prev=[hello from v1]"]);
            assert.equal(greetId(), before);
            assert.equal(stackOutputs(toolchain, local()).stdout, "hello from v2");
        });

        it("a failing command fails the up with its create text and its whole output (logging: none), and leaves no state", async () => {
            const up = await run(local({ ENGINE_COMMAND_TRIGGER: "t2", ENGINE_COMMAND_VERSION: "v2", ENGINE_COMMAND_FAIL: "1" }), ["up"]);
            assert.notEqual(up.status, 0, `the up succeeded:\n${up.output}`);
            assert.match(up.output, /error: exit status 3: running "echo \\"out-before-failing\\"; echo \\"err-before-failing\\" >&2; exit 3":\n\s*out-before-failing\n\s*err-before-failing/);
            assert.equal(stateResources("local").filter((r) => r.urn.endsWith("::failing")).length, 0, "a failed create left state behind");
            assert.ok(!up.output.includes(secret));
        });

        it("an input the stand-in does not implement is a check error naming it", async () => {
            const preview = await run({ projectDir: FIXTURE, stack: "unsupported", stateDir: STATE, env: { ENGINE_COMMAND_SCENARIO: "unsupported" } }, ["preview"]);
            assert.notEqual(preview.status, 0, preview.output);
            assert.match(preview.output, /command:local:Command resource 'python': property interpreter .* interpreter is not supported by the medusa-deploy stand-in/);
        });
    });

    describe("remote.Command against sshd on loopback", () => {
        let sshd: ChildProcess | undefined;
        let sshdLog = "";
        let port = 0;
        let client = { privateKey: "", publicKey: "" };
        let hostKey = "";
        let otherHostKey = "";
        const tmp = path.join(WORK, "tmp");
        const user = os.userInfo().username;

        const remote = (stack: string, settings: Record<string, string>): EngineStack => ({
            projectDir: FIXTURE,
            stack,
            stateDir: STATE,
            env: {
                ENGINE_COMMAND_SCENARIO: "remote",
                ENGINE_COMMAND_SSH_PORT: String(port),
                ENGINE_COMMAND_SSH_USER: user,
                ENGINE_COMMAND_SSH_KEY: client.privateKey,
                ENGINE_COMMAND_SSH_HOST_KEY: hostKey,
                ENGINE_COMMAND_STDIN: "remote-stdin",
                // The plugin inherits the engine's environment: its key files go here.
                TMPDIR: tmp,
                ...settings,
            },
        });
        const leftoverKeyDirs = () => fs.readdirSync(tmp).filter((name) => name.startsWith("pulumi-command-standin-"));
        // A line from the middle of the private key: must never reach the state or the output.
        const keyLine = () => client.privateKey.split("\n")[2];

        before(async function () {
            requireReal(this, "OpenSSH (ssh, ssh-keygen, sshd)", commandExists("ssh") && commandExists("ssh-keygen") && fs.existsSync(SSHD), "apt-get install -y openssh-client openssh-server");
            const dir = path.join(WORK, "sshd");
            fs.mkdirSync(dir, { recursive: true });
            fs.mkdirSync(tmp, { recursive: true });
            hostKey = keygen(path.join(dir, "host_ed25519")).publicKey;
            otherHostKey = keygen(path.join(dir, "other_host_ed25519")).publicKey;
            client = keygen(path.join(dir, "client_ed25519"));
            fs.writeFileSync(path.join(dir, "authorized_keys"), `${client.publicKey}\n`, { mode: 0o600 });
            port = await freePort();
            const config = path.join(dir, "sshd_config");
            fs.writeFileSync(
                config,
                [
                    `Port ${port}`,
                    "ListenAddress 127.0.0.1",
                    `HostKey ${path.join(dir, "host_ed25519")}`,
                    `PidFile ${path.join(dir, "sshd.pid")}`,
                    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    // What the real provider's setenv requests (and so the stand-in's SetEnv) need.
                    "AcceptEnv STANDIN_* PULUMI_COMMAND_*",
                    "",
                ].join("\n"),
            );
            // Debian's sshd wants its privilege separation folder when it runs as root.
            if (process.getuid?.() === 0) fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
            const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
            sshd = child;
            await new Promise<void>((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`sshd did not start listening in 10 s:\n${sshdLog}`)), 10000);
                child.stderr?.on("data", (chunk: Buffer) => {
                    sshdLog += chunk.toString();
                    if (sshdLog.includes("Server listening on 127.0.0.1")) {
                        clearTimeout(timer);
                        resolve();
                    }
                });
                child.once("exit", (code) => {
                    clearTimeout(timer);
                    reject(new Error(`sshd exited with ${code}:\n${sshdLog}`));
                });
            });
        });

        after(() => {
            if (sshd?.pid && sshd.exitCode === null) sshd.kill("SIGTERM");
        });

        it("runs over ssh with the host key pinned: environment via SetEnv, stdin, the key file removed; a changed stdin updates with the previous stdout", async () => {
            const marker = path.join(WORK, "remote-ran");
            const first = remote("remote", { ENGINE_COMMAND_MARKER: marker });
            const up = await run(first, ["up"]);
            assert.equal(up.status, 0, `pulumi up failed:\n${up.output}\nsshd:\n${sshdLog}`);
            assert.equal(stackOutputs(toolchain, first).stdout, "env=hi over ssh stdin=remote-stdin prev=[]");
            assert.ok(fs.existsSync(marker), "the remote command did not run");
            assert.deepEqual(leftoverKeyDirs(), [], "the private key file was left behind");
            assert.deepEqual(stateFilesContaining(keyLine()), [], "the private key is in plain text in the state");
            assert.ok(!up.output.includes(keyLine()));
            const connection = stateResources("remote").find((r) => r.urn.endsWith("::remote"))?.outputs?.connection;
            assert.ok(isSecretValue(connection), "the connection is not a secret in the state");

            const second = remote("remote", { ENGINE_COMMAND_MARKER: marker, ENGINE_COMMAND_STDIN: "second" });
            const update = await run(second, ["up"]);
            assert.equal(update.status, 0, `pulumi up failed:\n${update.output}`);
            assert.match(update.output, /"update":1/);
            assert.equal(stackOutputs(toolchain, second).stdout, "env=hi over ssh stdin=second prev=[env=hi over ssh stdin=remote-stdin prev=[]]");
        });

        it("a wrong host key fails the up before anything runs on the host", async () => {
            const marker = path.join(WORK, "badkey-ran");
            const up = await run(remote("badkey", { ENGINE_COMMAND_MARKER: marker, ENGINE_COMMAND_SSH_HOST_KEY: otherHostKey }), ["up"]);
            assert.notEqual(up.status, 0, `the up succeeded with a wrong host key:\n${up.output}`);
            assert.match(up.output, /Host key verification failed.*nothing was run/);
            assert.ok(!fs.existsSync(marker), "the command ran although the host key did not match");
            assert.equal(stateResources("badkey").filter((r) => r.type === "command:remote:Command").length, 0);
            assert.deepEqual(leftoverKeyDirs(), []);
            assert.ok(!up.output.includes(keyLine()));
        });
    });
});
