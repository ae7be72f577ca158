// Where a stack keeps its edge files on the docker host: haproxy.cfg, the server-state file (which
// colour is live, read again when the edge restarts) and the edge's admin socket. Whoever can write in
// that folder can replace the socket or the config and so steer the shop's traffic, and a folder that
// is emptied at reboot loses which colour was live.
//
// What can be checked from the settings alone is checked for every host: the path's shape and the
// well-known shared, volatile and system locations. Ownership and permissions of a folder on a remote
// host cannot be seen from here (the settings are validated before anything connects to it); for the
// local host, where the folder is on this machine, they are checked on the file system as it is now.
import * as fs from "node:fs";
import * as path from "node:path";

/** World-writable (sticky) folders any local user can create entries in. */
const SHARED = ["/tmp", "/var/tmp", "/dev/shm"];
/** tmpfs folders emptied at every boot. */
const VOLATILE = ["/run", "/var/run"];
/** Folders that belong to the system or to dockerd itself. */
const SYSTEM = ["/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/proc", "/sys", "/dev", "/var/lib/docker", "/var/lib/containerd"];
/** Folders shared by everything under them: a stack needs a folder of its own below them. */
const TOO_BROAD = ["/", "/var", "/var/lib", "/home", "/opt", "/srv", "/root", "/mnt", "/media"];

/** sun_path of a UNIX socket holds 108 bytes including the final NUL (Linux). */
const SOCKET_PATH_MAX = 107;
/** The longest socket path below hostStateDir, the edge's operator socket (lib/hostNames.ts). */
export const ADMIN_SOCKET_SUFFIX = "/edge-run/operator.sock";

const within = (dir: string, parent: string) => dir === parent || dir.startsWith(parent === "/" ? "/" : `${parent}/`);

/** Problems visible in the path itself. `example` is a good value for this stack, for the messages. */
/** What a folder holds, for the consequences its problems name. */
export interface FolderPurpose {
    /** What another user would own by creating it first. */
    taken: string;
    /** What a folder emptied at every boot would lose. */
    lost: string;
    /** Whether the edge's admin socket lives under it (a UNIX socket path has a length limit). */
    holdsSocket: boolean;
}

export const HOST_STATE_PURPOSE: FolderPurpose = {
    taken: "the edge's config and admin socket, and with them the shop's traffic",
    lost: "the edge would forget which colour is live",
    holdsSocket: true,
};

export const BACKUP_FOLDER_PURPOSE: FolderPurpose = {
    taken: "the shop's database backups",
    lost: "every backup would be gone after a reboot",
    holdsSocket: false,
};

export function hostStateDirPathProblems(dir: string, example: string, purpose: FolderPurpose = HOST_STATE_PURPOSE): string[] {
    const fix = `use a folder of this stack's own that only its owner (or root) can write, e.g. ${example}`;
    if (dir.startsWith("~")) return [`starts with "~", which nothing expands on the host: write the full path, e.g. ${example}`];
    if (!path.posix.isAbsolute(dir)) return [`must be an absolute path (it is used on the docker host, not relative to this project), e.g. ${example}`];
    if (!/^[A-Za-z0-9_./-]+$/.test(dir)) return [`may contain only letters, digits, '_', '.', '-' and '/' (it is used in host scripts and socket paths), e.g. ${example}`];
    if (dir.split("/").some((part) => part === ".." || part === ".")) return [`must not contain "." or ".." components, e.g. ${example}`];
    const clean = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
    const problems: string[] = [];
    const shared = SHARED.find((p) => within(clean, p));
    const volatile = VOLATILE.find((p) => within(clean, p));
    const system = SYSTEM.find((p) => within(clean, p));
    if (shared) {
        problems.push(`is under ${shared}, a folder every local user can write: another user could create it first and then own ${purpose.taken}; ${fix}`);
    } else if (volatile) {
        problems.push(`is under ${volatile}, which is emptied at every boot: ${purpose.lost}; ${fix}`);
    } else if (system) {
        problems.push(`is under ${system}, which belongs to the system or to Docker; ${fix}`);
    } else if (TOO_BROAD.includes(clean)) {
        problems.push(`is ${clean} itself, shared by everything in it; ${fix}`);
    }
    if (purpose.holdsSocket && clean.length + ADMIN_SOCKET_SUFFIX.length > SOCKET_PATH_MAX) {
        problems.push(`is ${clean.length} characters long: the edge's admin socket ${clean}${ADMIN_SOCKET_SUFFIX} would exceed the ${SOCKET_PATH_MAX}-byte limit of a UNIX socket path; use a shorter folder, e.g. ${example}`);
    }
    return problems;
}

export interface LocalUser {
    uid: number;
}

/**
 * Problems of the folder on this machine (host `local`): a symlink into a shared place, a
 * world-writable folder on the way, or a folder that exists but belongs to someone else.
 */
export function localHostStateDirProblems(dir: string, example: string, user: LocalUser): string[] {
    const fix = `use a folder of this stack's own that only you (or root) can write, e.g. ${example}`;
    let existing = dir;
    while (!fs.existsSync(existing) && existing !== "/") existing = path.posix.dirname(existing);
    let real: string;
    try {
        real = fs.realpathSync(existing);
    } catch {
        return [];
    }
    const problems: string[] = [];
    const resolved = path.posix.join(real, path.posix.relative(existing, dir));
    if (resolved !== dir.replace(/\/+$/, "")) {
        for (const problem of hostStateDirPathProblems(resolved, example)) problems.push(`resolves through a symlink to ${resolved}, which ${problem}`);
    }
    for (let at = real; ; at = path.posix.dirname(at)) {
        const stat = fs.statSync(at, { throwIfNoEntry: false });
        if (stat && (stat.mode & 0o002) !== 0 && !SHARED.some((p) => within(at, p))) {
            problems.push(`is in ${at}, which every local user can write (mode ${(stat.mode & 0o7777).toString(8)}): another user could replace the folder and own the edge's admin socket; ${fix}`);
            break;
        }
        if (at === "/") break;
    }
    if (existing === dir || existing === dir.replace(/\/+$/, "")) {
        const stat = fs.statSync(dir);
        if (!stat.isDirectory()) problems.push(`exists and is not a folder; ${fix}`);
        else if (user.uid >= 0 && stat.uid !== user.uid && stat.uid !== 0) problems.push(`exists and belongs to another user (uid ${stat.uid}, you are ${user.uid}): that user controls the edge's files; ${fix}`);
    }
    return problems;
}
