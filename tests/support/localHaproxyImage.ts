// Builds a HAProxy image from this machine's own files, because no image can be pulled here (the
// official `haproxy` image is on Docker Hub). The rootfs holds Debian's /usr/sbin/haproxy, the shared
// libraries `ldd` lists for it plus the dynamic loader, a static busybox for /bin/sh, accounts and
// the folder the official image reads its config from, /usr/local/etc/haproxy.
//
// How it differs from the official image, and why it matters to the deploy:
// - The official image's entrypoint turns `haproxy -f cfg` into `haproxy -W -db -f cfg` (master-worker
//   mode, foreground). Here the CMD carries -W -db itself, so PID 1 is the same master process.
// - In master-worker mode the master reloads on SIGUSR2 and on SIGHUP alike (tests/host/
//   blueGreenDocker.test.ts checks both with this build), so install-edge-config.sh's default
//   `docker kill -s HUP` works with either image; its EDGE_RELOAD_COMMAND input covers other images.
// - USER haproxy (uid/gid 99), as in the official image; components/edge.ts overrides it with the
//   uid:gid install-edge-config.sh names (edgeUser, or the deploy user), never root. The official image's STOPSIGNAL SIGUSR1 (soft stop: in-flight
//   requests finish) cannot be set by `docker import` (20.10 refuses the change), so a container of
//   this image needs `--stop-signal SIGUSR1` to stop the same way: EDGE_STOP_SIGNAL below.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { PrivateDockerd } from "./privateDockerd";

export const LOCAL_HAPROXY_IMAGE = "medusa-deploy/haproxy:local";

/** Label holding `haproxy -v`'s first line, so a haproxy upgrade on this machine rebuilds the image. */
const VERSION_LABEL = "medusa-deploy.haproxy-version";
const HAPROXY_BINARY = "/usr/sbin/haproxy";
export const HAPROXY_CONFIG_DIR = "/usr/local/etc/haproxy";

/** The official image's stop signal, to pass as `docker run --stop-signal` with this image. */
export const EDGE_STOP_SIGNAL = "SIGUSR1";

/** Makes sure `tag` exists in `dockerd` (imports it when absent or built from another haproxy). Returns the tag. */
export function ensureLocalHaproxyImage(dockerd: PrivateDockerd, tag: string = LOCAL_HAPROXY_IMAGE): string {
    const version = haproxyVersion();
    if (existingVersion(dockerd, tag) === version) return tag;
    const rootfs = path.join(dockerd.root, "haproxy-rootfs");
    const tar = `${rootfs}.tar`;
    fs.rmSync(rootfs, { recursive: true, force: true });
    try {
        assembleHaproxyRootfs(rootfs);
        execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tar, "."]);
        dockerd.docker([
            "import",
            "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change", "WORKDIR /var/lib/haproxy",
            "--change", "USER haproxy",
            "--change", `LABEL ${VERSION_LABEL}="${version}"`,
            "--change", `CMD ["haproxy", "-W", "-db", "-f", "${HAPROXY_CONFIG_DIR}/haproxy.cfg"]`,
            tar,
            tag,
        ]);
    } finally {
        fs.rmSync(rootfs, { recursive: true, force: true });
        fs.rmSync(tar, { force: true });
    }
    return tag;
}

function haproxyVersion(): string {
    if (!fs.existsSync(HAPROXY_BINARY)) throw new Error(`${HAPROXY_BINARY} is missing: apt-get install -y haproxy`);
    return execFileSync(HAPROXY_BINARY, ["-v"], { encoding: "utf8" }).split("\n")[0].replace(/"/g, "").trim();
}

function existingVersion(dockerd: PrivateDockerd, tag: string): string | undefined {
    try {
        // A missing image is the expected answer the first time: the daemon's "no such image" is not shown.
        const format = `{{index .Config.Labels "${VERSION_LABEL}"}}`;
        return execFileSync("docker", ["image", "inspect", "--format", format, tag], { env: dockerd.env(), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || undefined;
    } catch {
        return undefined;
    }
}

/** Writes the rootfs into `rootfs` (merged-/usr layout like Debian 12, so ldd's paths resolve unchanged). */
export function assembleHaproxyRootfs(rootfs: string): void {
    for (const dir of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "tmp", "run", "var/lib/haproxy", "proc", "sys", "dev", HAPROXY_CONFIG_DIR.slice(1)]) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    }
    for (const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"]]) {
        fs.symlinkSync(target, path.join(rootfs, link));
    }
    fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);

    copyDereferenced(rootfs, HAPROXY_BINARY);
    for (const library of linkedLibraries(HAPROXY_BINARY)) copyDereferenced(rootfs, library);

    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => fs.existsSync(p));
    if (!busybox) throw new Error("no busybox on this machine: apt-get install -y busybox-static");
    fs.copyFileSync(busybox, path.join(rootfs, "usr/bin/busybox"));
    fs.chmodSync(path.join(rootfs, "usr/bin/busybox"), 0o755);
    for (const applet of execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean)) {
        if (applet === "busybox" || applet.includes("/")) continue;
        const dest = path.join(rootfs, "usr/bin", applet);
        if (!fs.existsSync(dest)) fs.symlinkSync("busybox", dest);
    }

    fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:99:haproxy:/var/lib/haproxy:/usr/sbin/nologin\n");
    fs.writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\nhaproxy:x:99:\n");
    // getaddrinfo (init-addr libc) reads /etc/hosts and Docker's resolv.conf through these.
    fs.writeFileSync(path.join(rootfs, "etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
    execFileSync("chown", ["99:99", path.join(rootfs, "var/lib/haproxy")]);
}

/** Absolute paths ldd prints for `binary`: its libraries and the dynamic loader. */
function linkedLibraries(binary: string): string[] {
    return execFileSync("ldd", [binary], { encoding: "utf8" })
        .split("\n")
        .map((line) => /(\/\S+)/.exec(line.split("=>").pop() ?? "")?.[1])
        .filter((p): p is string => p !== undefined);
}

/** Copies the file behind `file` to the same path in the rootfs, with directory symlinks such as /lib64 resolved. */
function copyDereferenced(rootfs: string, file: string): void {
    const inImage = path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
    const dest = path.join(rootfs, inImage);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(fs.realpathSync(file), dest);
    fs.chmodSync(dest, 0o755);
}
