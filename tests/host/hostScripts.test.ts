// What a host receives: each script with its shared libraries inlined, runnable on its own by sh -c
// exactly as lib/hostInvocation.ts renders it.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostScript, HostScriptName } from "../../components/hostScripts";
import { renderHostInvocation, renderStdinHostInvocation } from "../../lib/hostInvocation";

// Every script under host/, so a new one cannot be left out of this check.
const SCRIPTS = fs
    .readdirSync(path.join(__dirname, "../../host"))
    .filter((file) => file.endsWith(".sh"))
    .map((file) => file.slice(0, -".sh".length) as HostScriptName);

describe("host scripts as sent to a host", () => {
    for (const name of SCRIPTS) {
        it(`${name} stands alone: no sourced file, valid POSIX sh`, () => {
            const text = hostScript(name);
            // No line that sources a library (". .../lib/x.sh"), whatever the comments mention.
            assert.doesNotMatch(text, /medusa-deploy:inline|^\s*\.\s+\S*lib\/[a-z-]+\.sh/m);
            const parsed = spawnSync("sh", ["-n", "-c", text], { encoding: "utf8" });
            assert.equal(parsed.status, 0, parsed.stderr);
        });
    }

    it("runs from a folder with no host/lib next to it, through the rendered invocation", () => {
        const empty = fs.mkdtempSync(path.join(os.tmpdir(), "medusa-host-"));
        try {
            const env = { EDGE_ADMIN_SOCKET: path.join(empty, "admin.sock"), EDGE_STATE_FILE: path.join(empty, "state"), TARGET_COLOUR: "purple", VERIFY_URL: "http://127.0.0.1:1/health" };
            const command = renderHostInvocation({ script: hostScript("traffic-switch"), name: "traffic-switch", env, sudo: false });
            const result = spawnSync("/bin/sh", ["-c", command], { cwd: empty, encoding: "utf8", env: { PATH: process.env.PATH } });
            assert.equal(result.status, 2, result.stdout + result.stderr);
            assert.match(result.stderr, /TARGET_COLOUR/);
            assert.doesNotMatch(result.stderr, /(edge-lock|safe-files)\.sh|not found/);
        } finally {
            fs.rmSync(empty, { recursive: true, force: true });
        }
    });

    it("a script sent on stdin ahead of its data: the largest one runs whole, its data follows, and the command line stays short", () => {
        const script = hostScript("backup-database");
        const { command, stdinPrefix } = renderStdinHostInvocation({ script, name: "backup-database", env: { BACKUP_NAME: "../evil.dump" }, sudo: false });
        assert.ok(command.length < 800 && script.length > 20000, `command ${command.length} characters for a script of ${script.length}`);
        const refused = spawnSync("/bin/sh", ["-c", command], { input: `${stdinPrefix}the-password\n`, encoding: "utf8", env: { PATH: process.env.PATH } });
        assert.equal(refused.status, 2, refused.stdout + refused.stderr);
        assert.match(refused.stderr, /^backup-database: BACKUP_NAME '\.\.\/evil\.dump' is not a dump name/m, "the script's own reason, from the script that ran whole");

        const probe = renderStdinHostInvocation({ script: 'IFS= read -r first\nrest=$(cat)\nprintf "%s|%s|%s|%s" "$0" "$A" "$first" "$rest"', name: "probe", env: { A: "it's $HOME" }, sudo: false });
        const data = spawnSync("/bin/sh", ["-c", probe.command], { input: `${probe.stdinPrefix}s3cret line\nmore\n\\ data`, encoding: "utf8" });
        assert.equal(data.stdout, "probe|it's $HOME|s3cret line|more\n\\ data");
        const cut = spawnSync("/bin/sh", ["-c", command], { input: stdinPrefix.slice(0, 5000), encoding: "utf8" });
        assert.equal(cut.status, 2);
        assert.match(cut.stderr, /the script did not arrive whole on stdin \(\d+ lines missing\); nothing ran/);
    });

    it("passes values with quotes and spaces to the script unchanged", () => {
        const command = renderHostInvocation({ script: 'printf "%s|%s" "$A" "$0"', name: "probe", env: { A: "it's a $HOME `x` \"y\"" }, sudo: false });
        const result = spawnSync("/bin/sh", ["-c", command], { encoding: "utf8" });
        assert.equal(result.stdout, "it's a $HOME `x` \"y\"|probe");
    });
});
