// host/run-oneoff.sh against a real dockerd in a network namespace of the test's own. The "server"
// is a busybox container run as components/colourSet.ts runs a colour's server (its own user, the
// stack's network, secrets in its environment); a second container on that network stands in for
// the database the one-off must reach by name.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { HTTPD_APPLETS, importBusyboxImage, STATIC_BUSYBOX } from "../support/busyboxImage";
import { NetnsDockerd } from "../support/netnsDockerd";
import { unmountUnder } from "../support/privateDockerd";
import { commandLinesContaining } from "../support/processCommandLines";
import { commandExists, isRoot, requireCommands, requireReal } from "../support/realComponent";
import { runShellScript, ScriptRun, ScriptRunOptions } from "../support/runShellScript";

const SCRIPT = path.resolve(__dirname, "../../host/run-oneoff.sh");
const WORK = path.resolve(__dirname, "../../.test-work/run-oneoff");
const NETNS = "medusa-oneoff-it";
const IMAGE = "medusa-deploy-test/oneoff-app:1";
const NETWORK = "medusa-oneoff-net";
const SERVER = "medusa-oneoff-blue-server";
const DATABASE = "medusa-oneoff-db";
const ONEOFF = "medusa-oneoff-blue-oneoff-1";
const SECRET = `s3cret-${process.pid}-oneoff`;

describe("host/run-oneoff.sh against a real dockerd", function () {
    this.timeout(180000);
    let ns: NetnsDockerd;

    const docker = (args: string[]): string => ns.dockerd.docker(args, { timeoutMs: 60000 }).trim();
    const exists = (name: string): boolean => docker(["ps", "-a", "-q", "--filter", `name=^/${name}$`]) !== "";

    before(async function () {
        requireCommands(this, ["dockerd", "docker", "nsenter", "ip", "tar"], "apt-get install -y docker.io iproute2 tar");
        requireReal(this, "root (dockerd and network namespaces need it)", isRoot(), "run the tests as root");
        requireReal(this, "a static busybox", STATIC_BUSYBOX !== undefined && commandExists("busybox"), "apt-get install -y busybox-static");
        fs.mkdirSync(WORK, { recursive: true });
        ns = new NetnsDockerd(NETNS, path.join(WORK, "dockerd"));
        await ns.start();
        importBusyboxImage(ns.dockerd, IMAGE, WORK, {
            applets: [...HTTPD_APPLETS, "cat", "env", "id", "sleep", "grep"],
            files: { "/www/orders": "3 orders\n" },
            changes: ["ENV PATH=/bin", "ENV IMAGE_DEFAULT=from-image"],
        });
        docker(["network", "create", NETWORK]);
        docker(["run", "-d", "--name", DATABASE, "--network", NETWORK, "--network-alias", "postgres", IMAGE, "httpd", "-f", "-p", "5432", "-h", "/www"]);
        docker(["run", "-d", "--name", SERVER, "--init", "--user", "70001:70001", "--network", NETWORK, "-e", `DATABASE_URL=postgres://medusa:${SECRET}@postgres:5432/medusa`, "-e", "MEDUSA_COLOUR=blue", IMAGE, "sleep", "3600"]);
    });

    after(async function () {
        if (ns) await ns.stop();
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("runs the command in a fresh container with the server's image, environment, user and network; stdin in, exit code out; removed after", async function () {
        const serverStarted = docker(["inspect", "-f", "{{.State.StartedAt}}", SERVER]);
        const script = 'id -u; env | grep -c "^DATABASE_URL=postgres://medusa:"; echo "colour=$MEDUSA_COLOUR image=$IMAGE_DEFAULT"; wget -qO- http://postgres:5432/orders; cat; exit 7';
        const run = await runOneoff(["sh", "-c", script], {}, "from stdin\n");
        assert.equal(run.status, 7, `the command's own exit code; stderr: ${run.stderr}`);
        assert.equal(run.stdout, "70001\n1\ncolour=blue image=from-image\n3 orders\nfrom stdin\n");
        assert.match(run.stderr, new RegExp(`oneoff: running in ${ONEOFF} \\(image sha256:[0-9a-f]{64} of ${SERVER}, network ${NETWORK}, user 70001:70001\\): sh -c`));
        assert.doesNotMatch(run.stdout + run.stderr, new RegExp(SECRET), "the secret is not printed by the script");
        assert.equal(exists(ONEOFF), false, "the one-off container is removed when it ends");
        assert.equal(docker(["inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", SERVER]), `true ${serverStarted}`, "the colour's server was not touched");
    });

    it("the secrets never appear on a command line, in a file of the script or in the one-off's command", async function () {
        const running = runOneoff(["sleep", "4"]);
        let seen: string[] = [];
        let sawContainer = false;
        for (let i = 0; i < 60 && !sawContainer; i++) {
            await new Promise((resolve) => setTimeout(resolve, 100));
            seen = seen.concat(commandLinesContaining(SECRET));
            sawContainer = docker(["ps", "-q", "--filter", `name=^/${ONEOFF}$`]) !== "";
        }
        assert.ok(sawContainer, "the one-off ran");
        seen = seen.concat(commandLinesContaining(SECRET));
        const run = await running;
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(seen, [], "no process had the secret on its command line");
    });

    it("a TERM while the command runs removes the one-off container and says so by its exit code", async function () {
        const run = await runOneoff(["sh", "-c", "echo started; sleep 20; echo finished"], {}, undefined, { terminateWhen: { stdout: /started/, afterMs: 200 } });
        assert.equal(run.status, 143, run.stderr);
        assert.equal(run.stdout, "started\n", "the command was stopped, not waited for");
        for (let i = 0; i < 50 && exists(ONEOFF); i++) await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(exists(ONEOFF), false, "no half-run one-off stays behind");
    });

    it("refuses bad input before creating anything: a missing colour, no command, a multi-line value", async function () {
        const missing = await runOneoff(["true"], { ONEOFF_FROM: "medusa-oneoff-green-server" });
        assert.equal(missing.status, 2);
        assert.match(missing.stderr, /container medusa-oneoff-green-server does not exist .*has this colour been deployed\? \(npm run status\); nothing ran/);
        const noCommand = await runOneoff([]);
        assert.equal(noCommand.status, 2);
        assert.match(noCommand.stderr, /no command given/);
        const badName = await runOneoff(["true"], { ONEOFF_NAME: "x; rm -rf /" });
        assert.equal(badName.status, 2);
        assert.match(badName.stderr, /ONEOFF_NAME must be a container name/);

        docker(["run", "-d", "--name", "medusa-oneoff-green-server", "--network", NETWORK, "-e", "NOTE=line one\nline two", IMAGE, "sleep", "3600"]);
        const multiLine = await runOneoff(["true"], { ONEOFF_FROM: "medusa-oneoff-green-server" });
        assert.equal(multiLine.status, 2);
        assert.match(multiLine.stderr, /an environment value of medusa-oneoff-green-server spans lines/);
        assert.equal(exists(ONEOFF), false, "nothing was created");
    });

    /** run-oneoff.sh with `words` as its arguments (runShellScript runs a script without any). */
    function runOneoff(words: string[], env: Record<string, string> = {}, input?: string, extra: Partial<ScriptRunOptions> = {}): Promise<ScriptRun> {
        return runShellScript(SCRIPT, {
            env: { PATH: process.env.PATH, DOCKER_HOST: ns.dockerd.host, ONEOFF_FROM: SERVER, ONEOFF_NAME: ONEOFF, ...env },
            input,
            args: words,
            ...extra,
        });
    }
});
