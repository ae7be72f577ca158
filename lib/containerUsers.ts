// The numeric users the app and the edge run as. A container process whose uid is also a host
// account's can be read (its /proc environment holds the app's secrets) and signalled by that
// account, so each gets an id of its own, above the range adduser hands out (1000-59999), and on a
// host this machine can inspect (host `local`) the ids are checked against its accounts.
import * as fs from "node:fs";

export interface ContainerUser {
    uid: number;
    gid: number;
}

/** Highest id Linux and Docker accept for a user namespace-less container (2^31 - 1). */
const MAX_ID = 2147483647;

/** "uid:gid" as numbers, or a phrase saying what is wrong (for "<setting> <phrase>"). */
export function parseContainerUser(text: string, example: string): ContainerUser | string {
    const m = /^(\d{1,10}):(\d{1,10})$/.exec(text);
    if (!m) return `must be a numeric uid:gid such as ${example}, got "${text}"`;
    const [uid, gid] = [Number(m[1]), Number(m[2])];
    if (uid === 0 || gid === 0) return `must not be root (uid or gid 0), got "${text}": that is what running as a user of its own avoids; use e.g. ${example}`;
    if (uid > MAX_ID || gid > MAX_ID) return `has an id above ${MAX_ID}, got "${text}"`;
    if (uid === 65534 || gid === 65534) return `must not be nobody/nogroup (65534), which many services share, got "${text}"; use e.g. ${example}`;
    return { uid, gid };
}

/** Accounts (name by id) of a passwd- or group-format file; empty when it cannot be read. */
export function accountsById(file: string): Map<number, string> {
    const byId = new Map<number, string>();
    let text = "";
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        return byId;
    }
    for (const line of text.split("\n")) {
        const fields = line.split(":");
        if (fields.length >= 3 && /^\d+$/.test(fields[2])) byId.set(Number(fields[2]), fields[0]);
    }
    return byId;
}

/** Host accounts that share an id with `user`, as phrases; empty when there are none. */
export function hostAccountCollisions(user: ContainerUser, passwd: Map<number, string>, groups: Map<number, string>): string[] {
    const found: string[] = [];
    const account = passwd.get(user.uid);
    if (account !== undefined) found.push(`uid ${user.uid} is the host account "${account}"`);
    const group = groups.get(user.gid);
    if (group !== undefined) found.push(`gid ${user.gid} is the host group "${group}"`);
    return found;
}
