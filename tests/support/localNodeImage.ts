// Builds a Node base image from this machine's own files, because no image can be pulled here.
// The rootfs holds exactly what a Node build and a Node server need (DESIGN.md section 5):
// node and npm, all of glibc (native addons such as @swc/core need librt and friends), libstdc++ and
// libgcc_s, /usr/bin/ldd (npm reads it to decide that the system is glibc; without it npm skips the
// `-gnu` optional binary packages), a static busybox for /bin/sh and /usr/bin/env (npm scripts run
// through `sh -c` and npm's entry points start with `#!/usr/bin/env node`), the CA bundle, a root
// entry in /etc/passwd and /etc/group, a sticky /tmp, and addgroup/adduser, which Debian's
// busybox-static lacks: small sh scripts stand in for them, taking the Alpine/busybox flags that
// Dockerfiles written for node:*-alpine use.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { PrivateDockerd } from "./privateDockerd";

export const LOCAL_NODE_IMAGE = "medusa-deploy/node:20-local";

/** Label on the image: the host node version it was built from, so a node upgrade rebuilds it. */
const VERSION_LABEL = "medusa-deploy.node-version";

/** The CA bundle of this machine. Node ignores the system store, so the image points NODE_EXTRA_CA_CERTS at it. */
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface LocalNodeImageOptions {
    /** Folder used to assemble the rootfs; defaults to <dockerd root>/node-rootfs. Removed afterwards. */
    workDir?: string;
    /** Rebuild even if an image with the tag and the same node version exists. */
    force?: boolean;
}

/**
 * Makes sure `tag` exists in `dockerd`, importing it from this machine's files when absent or built
 * from another node version. Returns the tag. Takes ~10 s when it builds, ~0.1 s when it does not.
 */
export function ensureLocalNodeImage(
    dockerd: PrivateDockerd,
    tag: string = LOCAL_NODE_IMAGE,
    options: LocalNodeImageOptions = {},
): string {
    const nodeBinary = fs.realpathSync(sh("command -v node").trim());
    const nodeVersion = execFileSync(nodeBinary, ["--version"], { encoding: "utf8" }).trim();
    if (!options.force && existingNodeVersion(dockerd, tag) === nodeVersion) return tag;

    const rootfs = options.workDir ?? path.join(dockerd.root, "node-rootfs");
    fs.rmSync(rootfs, { recursive: true, force: true });
    try {
        assembleRootfs(rootfs, nodeBinary);
        importRootfs(dockerd, rootfs, tag, nodeVersion);
    } finally {
        fs.rmSync(rootfs, { recursive: true, force: true });
    }
    return tag;
}

function existingNodeVersion(dockerd: PrivateDockerd, tag: string): string | undefined {
    try {
        const format = `{{index .Config.Labels "${VERSION_LABEL}"}}`;
        const out = execFileSync("docker", ["image", "inspect", "--format", format, tag], {
            env: dockerd.env(),
            encoding: "utf8",
            stdio: ["ignore", "pipe", "ignore"],
        });
        return out.trim() || undefined;
    } catch {
        return undefined;
    }
}

/** Writes the rootfs into `rootfs`. Exported for a shell-free look at what goes in (and for debugging). */
export function assembleRootfs(rootfs: string, nodeBinary: string): void {
    // Same merged-/usr layout as Debian 12, so library paths from dpkg and ld.so resolve unchanged.
    for (const dir of ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/ssl/certs", "root", "home", "tmp", "var/tmp", "proc", "sys", "dev"]) {
        fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
    }
    for (const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"], ["lib64", "usr/lib64"]]) {
        fs.symlinkSync(target, path.join(rootfs, link));
    }
    fs.chmodSync(path.join(rootfs, "tmp"), 0o1777);
    fs.chmodSync(path.join(rootfs, "var/tmp"), 0o1777);
    fs.chmodSync(path.join(rootfs, "root"), 0o700);

    copyInto(rootfs, nodeBinary, "/usr/bin/node");
    copyNpm(rootfs, nodeBinary);
    for (const file of sharedLibraryFiles(nodeBinary)) copyInto(rootfs, file);
    copyInto(rootfs, fs.realpathSync(sh("command -v ldd").trim()), "/usr/bin/ldd");
    installBusybox(rootfs);
    fs.copyFileSync(CA_BUNDLE, path.join(rootfs, CA_BUNDLE));
    writeAccounts(rootfs);
}

/** npm's own folder next to node (…/lib/node_modules/npm) and the npm/npx entry points as symlinks. */
function copyNpm(rootfs: string, nodeBinary: string): void {
    const npmCli = fs.realpathSync(sh("command -v npm").trim());
    const npmDir = path.resolve(path.dirname(npmCli), "..");
    if (!fs.existsSync(path.join(npmDir, "package.json"))) {
        throw new Error(`cannot find npm's folder next to ${npmCli} (node at ${nodeBinary})`);
    }
    const inImage = "/usr/lib/node_modules/npm";
    fs.mkdirSync(path.join(rootfs, path.dirname(inImage)), { recursive: true });
    execFileSync("cp", ["-a", npmDir, path.join(rootfs, inImage)]);
    fs.symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", path.join(rootfs, "usr/bin/npm"));
    fs.symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", path.join(rootfs, "usr/bin/npx"));
}

/**
 * All files of glibc, libstdc++ and libgcc_s (not just what node links): native addons and
 * `getaddrinfo` load more of glibc at run time (librt, libnss_dns, libresolv, gconv modules).
 */
function sharedLibraryFiles(nodeBinary: string): string[] {
    const linked = sh(`ldd '${nodeBinary}'`)
        .split("\n")
        .map((line) => /(\/\S+)/.exec(line.split("=>").pop() ?? "")?.[1])
        .filter((p): p is string => p !== undefined);
    if (commandExists("dpkg-query")) {
        const packages = new Set<string>();
        for (const lib of linked) {
            const owner = sh(`dpkg-query -S '${fs.realpathSync(lib)}' 2>/dev/null || dpkg-query -S '${lib}' 2>/dev/null || true`);
            const name = owner.split(":")[0].trim();
            if (name) packages.add(name);
        }
        const files = sh(`dpkg-query -L ${[...packages].join(" ")}`)
            .split("\n")
            .filter((f) => /^\/(usr\/)?(lib|lib64)\//.test(f))
            .filter((f) => !f.includes("/usr/lib/x86_64-linux-gnu/audit") && isFileOrLink(f));
        if (files.some((f) => /\/libc\.so\.6$/.test(f))) return files;
    }
    // No dpkg: everything glibc installs next to libc.so.6, plus what node links.
    const libDir = path.dirname(linked.find((l) => /libc\.so\.6$/.test(l)) ?? "/lib/x86_64-linux-gnu/libc.so.6");
    const glibcNames = /^(ld-linux.*|lib(c|m|dl|rt|pthread|resolv|util|anl|mvec|nsl|BrokenLocale|thread_db|nss_\w+|c_malloc_debug|memusage|pcprofile)\.so(\.\d+)*)$/;
    const extra = fs.readdirSync(libDir).filter((n) => glibcNames.test(n)).map((n) => path.join(libDir, n));
    return [...new Set([...linked, ...extra])];
}

function isFileOrLink(file: string): boolean {
    try {
        return !fs.lstatSync(file).isDirectory();
    } catch {
        return false;
    }
}

/** Copies one file (or symlink, verbatim) to the same path inside the rootfs, resolving directory symlinks like /lib. */
function copyInto(rootfs: string, file: string, inImage?: string): void {
    const target = inImage ?? path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
    const dest = path.join(rootfs, target);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.rmSync(dest, { force: true });
    execFileSync("cp", ["-a", file, dest]);
}

/** A static busybox as /usr/bin/busybox and a symlink per applet that no real file already provides. */
function installBusybox(rootfs: string): void {
    const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => fs.existsSync(p));
    if (!busybox) throw new Error("no busybox on this machine: apt-get install -y busybox-static");
    if (!/statically linked|not a dynamic executable/.test(sh(`ldd '${busybox}' 2>&1 || true`))) {
        throw new Error(`${busybox} is not static: apt-get install -y busybox-static`);
    }
    fs.copyFileSync(busybox, path.join(rootfs, "usr/bin/busybox"));
    fs.chmodSync(path.join(rootfs, "usr/bin/busybox"), 0o755);
    const applets = execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
    for (const applet of applets) {
        if (applet === "busybox" || applet.includes("/")) continue;
        const dest = path.join(rootfs, "usr/bin", applet);
        if (!fs.existsSync(dest)) fs.symlinkSync("busybox", dest);
    }
    for (const [name, script] of Object.entries(accountScripts)) {
        fs.writeFileSync(path.join(rootfs, "usr/sbin", name), script, { mode: 0o755 });
    }
}

function writeAccounts(rootfs: string): void {
    fs.writeFileSync(path.join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    fs.writeFileSync(path.join(rootfs, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
    fs.writeFileSync(path.join(rootfs, "etc/shadow"), "root:*::0:::::\n", { mode: 0o640 });
    fs.writeFileSync(path.join(rootfs, "etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n");
    fs.writeFileSync(path.join(rootfs, "etc/os-release"), 'ID=medusa-deploy-local\nNAME="Node from the build machine (docker import)"\n');
}

// Stand-ins for busybox's addgroup/adduser with the flags Alpine Dockerfiles use:
//   addgroup [-S] [-g GID] GROUP          adduser [-S] [-D] [-H] [-u UID] [-G GROUP] [-h HOME] [-s SHELL] [-g GECOS] USER
// They append to /etc/group and /etc/passwd and refuse duplicates, which is all a Dockerfile needs.
const accountScripts: Record<string, string> = {
    addgroup: `#!/bin/sh
# addgroup [-S] [-g GID] GROUP  (stand-in: appends to /etc/group)
set -eu
gid=""; name=""
# Options may follow the name, as busybox's getopt allows.
while [ $# -gt 0 ]; do
    case "$1" in
        -g) gid="$2"; shift 2 ;;
        -S) shift ;;
        -*) echo "addgroup: unsupported option $1" >&2; exit 2 ;;
        *) name="$1"; shift ;;
    esac
done
[ -n "$name" ] || { echo "usage: addgroup [-S] [-g GID] GROUP" >&2; exit 2; }
if grep -q "^$name:" /etc/group; then echo "addgroup: group '$name' in use" >&2; exit 1; fi
if [ -z "$gid" ]; then
    gid=$(awk -F: 'BEGIN{m=999} $3>m && $3<60000 {m=$3} END{print m+1}' /etc/group)
fi
if awk -F: -v g="$gid" '$3==g {found=1} END{exit !found}' /etc/group; then echo "addgroup: gid '$gid' in use" >&2; exit 1; fi
echo "$name:x:$gid:" >> /etc/group
`,
    adduser: `#!/bin/sh
# adduser [-S] [-D] [-H] [-u UID] [-G GROUP] [-h HOME] [-s SHELL] [-g GECOS] USER
# (stand-in: appends to /etc/passwd, creates the group of the same name when -G is not given)
set -eu
uid=""; group=""; home=""; shell="/bin/sh"; gecos=""; system=""; nohome=""; name=""
# Options may follow the name, as busybox's getopt allows.
while [ $# -gt 0 ]; do
    case "$1" in
        -u) uid="$2"; shift 2 ;;
        -G) group="$2"; shift 2 ;;
        -h) home="$2"; shift 2 ;;
        -s) shell="$2"; shift 2 ;;
        -g) gecos="$2"; shift 2 ;;
        -S) system=1; shift ;;
        -D) shift ;;
        -H) nohome=1; shift ;;
        -*) echo "adduser: unsupported option $1" >&2; exit 2 ;;
        *) name="$1"; shift ;;
    esac
done
[ -n "$name" ] || { echo "usage: adduser [-S] [-D] [-H] [-u UID] [-G GROUP] USER" >&2; exit 2; }
if grep -q "^$name:" /etc/passwd; then echo "adduser: user '$name' in use" >&2; exit 1; fi
if [ -z "$uid" ]; then
    uid=$(awk -F: 'BEGIN{m=999} $3>m && $3<60000 {m=$3} END{print m+1}' /etc/passwd)
fi
if awk -F: -v u="$uid" '$3==u {found=1} END{exit !found}' /etc/passwd; then echo "adduser: uid '$uid' in use" >&2; exit 1; fi
if [ -n "$group" ]; then
    gid=$(awk -F: -v n="$group" '$1==n {print $3}' /etc/group)
    if [ -z "$gid" ]; then echo "adduser: unknown group $group" >&2; exit 1; fi
elif [ -n "$system" ]; then
    # busybox adduser -S without -G puts a system user into nogroup
    gid=65534
else
    addgroup -g "$uid" "$name" 2>/dev/null || addgroup "$name"
    gid=$(awk -F: -v n="$name" '$1==n {print $3}' /etc/group)
fi
[ -n "$home" ] || home="/home/$name"
echo "$name:x:$uid:$gid:$gecos:$home:$shell" >> /etc/passwd
if [ -z "$nohome" ]; then mkdir -p "$home" && chown "$uid:$gid" "$home"; fi
`,
};

function importRootfs(dockerd: PrivateDockerd, rootfs: string, tag: string, nodeVersion: string): void {
    const tar = path.join(path.dirname(rootfs), "node-rootfs.tar");
    try {
        execFileSync("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tar, "."]);
        dockerd.docker([
            "import",
            "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            // Node does not read the system CA store; on this machine npm's traffic needs the host bundle.
            "--change", `ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`,
            "--change", `ENV NODE_VERSION=${nodeVersion.replace(/^v/, "")}`,
            "--change", `LABEL ${VERSION_LABEL}=${nodeVersion}`,
            "--change", 'CMD ["node"]',
            tar,
            tag,
        ]);
    } finally {
        fs.rmSync(tar, { force: true });
    }
}

function sh(script: string): string {
    return execFileSync("sh", ["-c", script], { encoding: "utf8" });
}

function commandExists(command: string): boolean {
    try {
        sh(`command -v ${command} >/dev/null`);
        return true;
    } catch {
        return false;
    }
}
