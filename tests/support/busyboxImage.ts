// Tiny images for tests, made with `docker import` from this machine's static busybox (no image can
// be pulled here): the applets a test needs as links, plus files of its own (a stub standing in for
// a program, a release marker).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PrivateDockerd } from "./privateDockerd";

/** Debian's busybox-static, or undefined when it is not installed. */
export const STATIC_BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((p) => fs.existsSync(p));

/** What tests/fixtures/engine-containers runs: a busybox httpd with a wget health check. */
export const HTTPD_APPLETS = ["sh", "httpd", "wget", "mkdir", "echo"];

export interface BusyboxImage {
    /** Applets linked in /bin, e.g. ["sh", "sleep"]. */
    applets: string[];
    /** Files by absolute path in the image; text or bytes, with an optional mode. */
    files?: Record<string, string | Buffer | { content: string | Buffer; mode: number }>;
    /** Empty folders by absolute path, e.g. ["/tmp"]. */
    dirs?: string[];
    /** `docker import --change` lines, e.g. ["ENV PATH=/bin"]. */
    changes?: string[];
}

/** Imports `image` as `tag` into the daemon; `workDir` holds the root filesystem meanwhile. */
export function importBusyboxImage(dockerd: PrivateDockerd, tag: string, workDir: string, image: BusyboxImage): void {
    if (!STATIC_BUSYBOX) throw new Error("no static busybox: apt-get install -y busybox-static");
    const rootfs = path.join(workDir, `rootfs-${tag.replace(/[^A-Za-z0-9_.-]/g, "_")}`);
    fs.rmSync(rootfs, { recursive: true, force: true });
    fs.mkdirSync(path.join(rootfs, "bin"), { recursive: true });
    fs.copyFileSync(STATIC_BUSYBOX, path.join(rootfs, "bin/busybox"));
    fs.chmodSync(path.join(rootfs, "bin/busybox"), 0o755);
    for (const applet of image.applets) fs.symlinkSync("busybox", path.join(rootfs, "bin", applet));
    for (const dir of image.dirs ?? []) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    for (const [file, spec] of Object.entries(image.files ?? {})) {
        const { content, mode } = typeof spec === "string" || Buffer.isBuffer(spec) ? { content: spec, mode: 0o644 } : spec;
        fs.mkdirSync(path.dirname(path.join(rootfs, file)), { recursive: true });
        fs.writeFileSync(path.join(rootfs, file), content, { mode });
    }
    const tar = `${rootfs}.tar`;
    try {
        execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tar, "."]);
        dockerd.docker(["import", ...(image.changes ?? []).flatMap((change) => ["--change", change]), tar, tag]);
    } finally {
        fs.rmSync(rootfs, { recursive: true, force: true });
        fs.rmSync(tar, { force: true });
    }
}
