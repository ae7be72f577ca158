// The promotion property (DESIGN.md section 3): prod deploys the image staging verified BY DIGEST, so
// moving a tag in the registry afterwards cannot change what prod runs. Shown with Debian's registry
// on loopback and two dockerds of the test's own, "staging" (pushes) and "prod" (only pulls), and a
// tiny image made with `docker import` from a static busybox plus a /release file.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LocalRegistry } from "../support/localRegistry";
import { PrivateDockerd, unmountUnder } from "../support/privateDockerd";
import { isRoot, requireCommands, requireReal } from "../support/realComponent";

const SUITE_ROOT = path.resolve(__dirname, "../../.test-work/registry-digest");
const WORK = path.join(SUITE_ROOT, String(process.pid));
const REPOSITORY = "shop/medusa";
const BUSYBOX = "/bin/busybox";

/** `<tag>: digest: sha256:… size: N`, the line `docker push` ends with. */
function pushedDigest(pushOutput: string): string {
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushOutput)?.[1];
    if (digest === undefined) throw new Error(`docker push reported no digest:\n${pushOutput}`);
    return digest;
}

/** Imports a rootfs of a static busybox (as /bin/sh and /bin/cat) and /release holding `release`. */
function importReleaseImage(dockerd: PrivateDockerd, release: string, tag: string): void {
    const rootfs = path.join(WORK, `rootfs-${release}`);
    const tar = `${rootfs}.tar`;
    fs.mkdirSync(path.join(rootfs, "bin"), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(rootfs, "bin/busybox"));
    fs.chmodSync(path.join(rootfs, "bin/busybox"), 0o755);
    for (const applet of ["sh", "cat"]) fs.symlinkSync("busybox", path.join(rootfs, "bin", applet));
    fs.writeFileSync(path.join(rootfs, "release"), release);
    execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tar, "."]);
    dockerd.docker(["import", "--change", 'CMD ["/bin/cat", "/release"]', tar, tag]);
    fs.rmSync(rootfs, { recursive: true, force: true });
    fs.rmSync(tar, { force: true });
}

/** What /release says inside `image`, run without a network. */
function releaseIn(dockerd: PrivateDockerd, image: string): string {
    return dockerd.docker(["run", "--rm", "--network", "none", image, "/bin/cat", "/release"]).trim();
}


/** Folders of earlier runs whose test process is gone (an interrupted run skips its after hook). */
function removeStaleRuns(): void {
    if (!fs.existsSync(SUITE_ROOT)) return;
    for (const name of fs.readdirSync(SUITE_ROOT)) {
        if (!/^\d+$/.test(name) || Number(name) === process.pid || fs.existsSync(`/proc/${name}`)) continue;
        const stale = path.join(SUITE_ROOT, name);
        unmountUnder(stale);
        fs.rmSync(stale, { recursive: true, force: true });
    }
}

describe("promotion by digest through a real registry", function () {
    this.timeout(60000);

    let registry: LocalRegistry | undefined;
    let staging: PrivateDockerd | undefined;
    let prod: PrivateDockerd | undefined;
    let repository = "";
    let digestOfA: string | undefined;
    let digestOfB: string | undefined;

    const started = <T>(value: T | undefined): T => {
        if (value === undefined) throw new Error("set up by an earlier step, which failed");
        return value;
    };

    before(async function () {
        requireCommands(this, ["docker-registry", "dockerd", "docker"], "apt-get install -y docker-registry docker.io");
        requireReal(this, "root (dockerd needs it)", isRoot(), "run the host tests as root");
        requireReal(this, `a static ${BUSYBOX}`, fs.existsSync(BUSYBOX), "apt-get install -y busybox-static");
        removeStaleRuns();
        fs.mkdirSync(WORK, { recursive: true });

        registry = new LocalRegistry({ root: path.join(WORK, "registry") });
        staging = new PrivateDockerd({ root: path.join(WORK, "staging") });
        prod = new PrivateDockerd({ root: path.join(WORK, "prod") });
        await Promise.all([registry.start(), staging.start(), prod.start()]);
        repository = `${registry.address}/${REPOSITORY}`;

        importReleaseImage(staging, "A", "medusa-test/release:A");
        importReleaseImage(staging, "B", "medusa-test/release:B");
    });

    after(async function () {
        await Promise.all([staging?.stop(), prod?.stop(), registry?.stop()]);
        unmountUnder(WORK);
        fs.rmSync(WORK, { recursive: true, force: true });
    });

    it("staging pushes image A as :A and the push reports the digest the registry serves for the tag", async function () {
        const dockerd = started(staging);
        dockerd.docker(["tag", "medusa-test/release:A", `${repository}:A`]);
        digestOfA = pushedDigest(dockerd.docker(["push", `${repository}:A`]));

        const repoDigest = dockerd.docker(["image", "inspect", "--format", "{{index .RepoDigests 0}}", `${repository}:A`]).trim();
        assert.equal(repoDigest, `${repository}@${digestOfA}`);
        assert.equal(await started(registry).manifestDigest(REPOSITORY, "A"), digestOfA);
    });

    it("re-tagging :A with image B and pushing moves the tag to another digest; A's digest still resolves", async function () {
        const dockerd = started(staging);
        const first = started(digestOfA);
        dockerd.docker(["tag", "medusa-test/release:B", `${repository}:A`]);
        digestOfB = pushedDigest(dockerd.docker(["push", `${repository}:A`]));

        assert.notEqual(digestOfB, first, "image B must have a digest of its own");
        assert.equal(await started(registry).manifestDigest(REPOSITORY, "A"), digestOfB, "the tag now names B");
        assert.equal(await started(registry).manifestDigest(REPOSITORY, first), first, "A is still stored by digest");
    });

    it("prod pulling the verified digest runs A, while pulling the tag would run B", function () {
        const dockerd = started(prod);
        const byDigest = `${repository}@${started(digestOfA)}`;
        dockerd.docker(["pull", byDigest]);
        assert.equal(releaseIn(dockerd, byDigest), "A");

        // The counter-case: the same pull by tag gets whatever was pushed last, so this test can fail.
        dockerd.docker(["pull", `${repository}:A`]);
        assert.equal(releaseIn(dockerd, `${repository}:A`), "B");
        const pulledTagDigest = dockerd.docker(["image", "inspect", "--format", "{{index .RepoDigests 0}}", `${repository}:A`]).trim();
        assert.equal(pulledTagDigest, `${repository}@${started(digestOfB)}`);
    });
});
