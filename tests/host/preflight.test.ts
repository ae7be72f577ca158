// host/preflight.sh on real folders and this machine's real accounts: it refuses a hostStateDir that
// someone else could replace (world-writable or foreign-owned folders on the way, links into them)
// and container ids that a host account already has, each naming the path or the setting, and it
// changes nothing.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isRoot, requireReal } from "../support/realComponent";
import { runShellScript } from "../support/runShellScript";

const SCRIPT = path.resolve(__dirname, "../../host/preflight.sh");
const repoRoot = path.resolve(__dirname, "../..");

describe("host/preflight.sh", function () {
    this.timeout(30_000);
    let work: string;

    before(function () {
        requireReal(this, "root", isRoot(), "run the tests as root (they chown folders to other users)");
        work = fs.mkdtempSync(path.join(repoRoot, ".test-work", `preflight-${process.pid}-`));
        fs.chmodSync(work, 0o755);
    });
    after(() => {
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    const run = (env: Record<string, string>) => runShellScript(SCRIPT, { env: { PATH: process.env.PATH, ...env } });

    it("accepts a folder whose every parent only root or the deploy user can change, and creates nothing", async () => {
        const dir = path.join(work, "ok", "prod");
        const result = await run({ HOST_STATE_DIR: dir, CONTAINER_USERS: "appUser=70001:70001 edgeUser=70002:70002" });
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout.trim(), "preflight: host scripts run as 0:0\npreflight: ok");
        assert.equal(fs.existsSync(path.join(work, "ok")), false, "preflight created something");
    });

    it("refuses a folder under a world-writable one, and under a link that leads into one", async () => {
        const underTmp = await run({ HOST_STATE_DIR: path.join(os.tmpdir(), `preflight-${process.pid}`, "prod") });
        assert.equal(underTmp.status, 2);
        assert.match(underTmp.stderr, /the folder on the way to hostStateDir, \/tmp is writable by every user \(mode 1777\).*nothing was changed on this host/);

        const link = path.join(work, "looks-private");
        fs.symlinkSync(os.tmpdir(), link);
        const throughLink = await run({ HOST_STATE_DIR: path.join(link, "prod") });
        assert.equal(throughLink.status, 2);
        assert.match(throughLink.stderr, /\/tmp is writable by every user/);
    });

    it("refuses a folder on the way that another user owns", async () => {
        const foreign = path.join(work, "foreign");
        fs.mkdirSync(foreign, { mode: 0o755 });
        fs.chownSync(foreign, 12345, 12345);
        const result = await run({ HOST_STATE_DIR: path.join(foreign, "prod") });
        assert.equal(result.status, 2);
        assert.match(result.stderr, new RegExp(`${foreign} belongs to uid 12345 \\(neither root nor uid 0, who runs the deploy\\)`));
    });

    it("refuses hostStateDir itself when it is a link or writable by its group", async () => {
        const real = path.join(work, "real");
        fs.mkdirSync(real, { mode: 0o755 });
        const linked = path.join(work, "linked");
        fs.symlinkSync(real, linked);
        const link = await run({ HOST_STATE_DIR: linked });
        assert.equal(link.status, 2);
        assert.match(link.stderr, /hostStateDir .*linked is a symbolic link/);

        const group = path.join(work, "group-writable");
        fs.mkdirSync(group);
        fs.chmodSync(group, 0o775);
        const writable = await run({ HOST_STATE_DIR: group });
        assert.equal(writable.status, 2);
        assert.match(writable.stderr, /is writable by its group \(mode 775\): chmod g-w it/);
    });

    it("refuses container ids a host account or group already has, naming the setting", async () => {
        const dir = path.join(work, "ids");
        const uid = await run({ HOST_STATE_DIR: dir, CONTAINER_USERS: "appUser=1:70001" });
        assert.equal(uid.status, 2);
        assert.match(uid.stderr, /medusa-deploy:appUser 1:70001: uid 1 is the host account 'daemon'/);
        const gid = await run({ HOST_STATE_DIR: dir, CONTAINER_USERS: "appUser=70001:70001 edgeUser=70002:0" });
        assert.equal(gid.status, 2);
        assert.match(gid.stderr, /medusa-deploy:edgeUser 70002:0: gid 0 is the host group 'root'/);
    });

    it("makes the backup folder (0700, ours) once every check passed, and refuses one it cannot trust", async () => {
        const state = path.join(work, "with-backups", "prod");
        const backups = path.join(state, "backups");
        const made = await run({ HOST_STATE_DIR: state, BACKUP_DIR: backups });
        assert.equal(made.status, 0, made.stderr);
        const stat = fs.lstatSync(backups);
        assert.ok(stat.isDirectory());
        assert.equal(stat.mode & 0o777, 0o700);
        assert.equal(stat.uid, 0);
        assert.equal((await run({ HOST_STATE_DIR: state, BACKUP_DIR: backups })).status, 0, "a second run accepts the folder it made");

        // A check that fails first makes nothing.
        const refusedState = path.join(os.tmpdir(), `preflight-bk-${process.pid}`, "prod");
        assert.equal((await run({ HOST_STATE_DIR: refusedState, BACKUP_DIR: path.join(refusedState, "backups") })).status, 2);
        assert.equal(fs.existsSync(refusedState), false);

        // Outside hostStateDir nobody checked the way: its parent must exist.
        const elsewhere = path.join(work, "srv-missing", "backups");
        const missing = await run({ HOST_STATE_DIR: state, BACKUP_DIR: elsewhere });
        assert.equal(missing.status, 2);
        assert.match(missing.stderr, /srv-missing that is to hold backupDir .* does not exist: create it/);

        const linked = path.join(work, "backups-link");
        fs.symlinkSync(backups, linked);
        const link = await run({ HOST_STATE_DIR: state, BACKUP_DIR: linked });
        assert.equal(link.status, 2);
        assert.match(link.stderr, /backupDir cannot be used: .*symbolic link/);

        const shared = path.join(work, "shared-backups");
        fs.mkdirSync(shared);
        fs.chmodSync(shared, 0o777);
        const open = await run({ HOST_STATE_DIR: state, BACKUP_DIR: path.join(shared, "prod") });
        assert.equal(open.status, 2);
        assert.match(open.stderr, /backupDir cannot be used: .*writable by its group or by others/);
        assert.match((await run({ HOST_STATE_DIR: state, BACKUP_DIR: "/srv/../etc" })).stderr, /BACKUP_DIR must be a plain absolute path/);
    });

    it("refuses a relative or unusual path before looking at anything", async () => {
        assert.match((await run({ HOST_STATE_DIR: "relative/dir" })).stderr, /HOST_STATE_DIR must be an absolute path, got 'relative\/dir'/);
        assert.match((await run({ HOST_STATE_DIR: "/srv/a;b" })).stderr, /may contain only letters, digits/);
    });
});
